"""The Journal in PostgreSQL: every question, answer, refusal, latency, vote and hand-off, shared by replicas."""

from __future__ import annotations

import contextlib

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bot.journal import JournalError, like_pattern, unknown_answer
from bot.models import Answer, Question
from knowledge.database import Database

# The columns of an answer row, as SqliteJournal returns them (Unix times, refused as 0 or 1).
_ANSWER = (
    "a.id, extract(epoch FROM a.asked_at)::float8 AS asked_at, a.asker, a.channel, a.question,"
    " a.standalone_query, a.answer, a.refused::int AS refused, a.confidence, a.generator, a.citations,"
    " a.total_ms, a.platform, a.conversation_id"
)
# Answers with how many 👍 and 👎 each got; callers add WHERE, then GROUP BY a.id.
_ANSWERS_WITH_VOTES = (
    f"SELECT {_ANSWER}, count(f.id) FILTER (WHERE f.vote > 0) AS up_votes,"
    " count(f.id) FILTER (WHERE f.vote < 0) AS down_votes"
    " FROM journal_answers a LEFT JOIN journal_feedback f ON f.answer_id = a.id "
)


class PostgresJournal:
    """The Journal in the tables journal_answers, journal_feedback and journal_escalations."""

    def __init__(self, database: Database):
        self.database = database

    def _connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        return self.database.using("the journal", JournalError)

    async def _rows(self, query: str, parameters: tuple = ()) -> list[dict]:
        async with self._connection() as connection:
            cursor = connection.cursor(row_factory=dict_row)
            await cursor.execute(query, parameters)
            return await cursor.fetchall()

    async def _one(self, query: str, parameters: tuple) -> dict | None:
        rows = await self._rows(query, parameters)
        return rows[0] if rows else None

    async def _write_about(self, answer_id: str, statement: str, parameters: tuple) -> None:
        """Run a statement that records something about an answer: UnknownAnswer when there is none."""
        try:
            async with self._connection() as connection:
                await connection.execute(statement, parameters)
        except JournalError as error:
            if isinstance(error.__cause__, psycopg.errors.ForeignKeyViolation):
                raise unknown_answer(answer_id) from None
            raise

    async def record_answer(self, question: Question, answer: Answer) -> None:
        """Store a question and the answer given."""
        row = (
            answer.id,
            question.asker,
            question.channel,
            question.text,
            answer.standalone_query,
            answer.text,
            answer.refused,
            answer.confidence,
            answer.generator,
            Jsonb([c.to_dict() for c in answer.citations]),
            answer.timings_ms.get("total"),
            question.platform,
            question.conversation_id,
        )
        async with self._connection() as connection:
            await connection.execute(
                "INSERT INTO journal_answers (id, asker, channel, question, standalone_query, answer, refused,"
                " confidence, generator, citations, total_ms, platform, conversation_id)"
                f" VALUES ({', '.join(['%s'] * len(row))})",
                row,
            )

    async def record_feedback(
        self, answer_id: str, vote: int, comment: str | None, voter: str | None
    ) -> None:
        """Store a vote (+1 or -1) on an answer; a voter's later vote on the same answer replaces theirs."""
        await self._write_about(
            answer_id,
            "INSERT INTO journal_feedback (answer_id, vote, comment, voter) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (answer_id, voter) DO UPDATE SET vote = excluded.vote,"
            " comment = excluded.comment, voted_at = now()",
            (answer_id, vote, comment, voter),
        )

    async def record_escalation(
        self, answer_id: str, requested_by: str | None, platform: str | None, posted_to: str | None
    ) -> None:
        """Store that someone asked a person of the support team to take over an answer."""
        await self._write_about(
            answer_id,
            "INSERT INTO journal_escalations (answer_id, requested_by, platform, posted_to)"
            " VALUES (%s, %s, %s, %s)",
            (answer_id, requested_by, platform, posted_to),
        )

    async def answer(self, answer_id: str) -> dict | None:
        """One recorded answer by id, or None when the journal has never seen it."""
        return await self._one(f"SELECT {_ANSWER} FROM journal_answers a WHERE a.id = %s", (answer_id,))

    async def continue_in(self, answer_id: str, conversation_id: str) -> None:
        """The conversation of an answer moved on (a Discord /ask answer's thread): record where it went."""
        async with self._connection() as connection:
            await connection.execute(
                "UPDATE journal_answers SET conversation_id = %s WHERE id = %s", (conversation_id, answer_id)
            )

    async def awaiting_a_person(self, platform: str, conversation_id: str) -> dict | None:
        """The latest answer of a conversation that was refused or handed off to a person, if any."""
        return await self._one(
            f"SELECT {_ANSWER} FROM journal_answers a WHERE a.platform = %s AND a.conversation_id = %s"
            " AND (a.refused OR EXISTS (SELECT 1 FROM journal_escalations e WHERE e.answer_id = a.id))"
            " ORDER BY a.asked_at DESC, a.id DESC LIMIT 1",
            (platform, conversation_id),
        )

    async def activity_since(self, since: float) -> dict[str, list[dict]]:
        """What happened since a Unix time: answers (with their votes), escalations (with the question)."""
        answers = await self._rows(
            _ANSWERS_WITH_VOTES
            + "WHERE a.asked_at >= to_timestamp(%s) GROUP BY a.id ORDER BY a.asked_at, a.id",
            (since,),
        )
        escalations = await self._rows(
            "SELECT e.answer_id, e.requested_by, e.platform, e.posted_to,"
            " extract(epoch FROM e.requested_at)::float8 AS requested_at, a.question"
            " FROM journal_escalations e JOIN journal_answers a ON a.id = e.answer_id"
            " WHERE e.requested_at >= to_timestamp(%s) ORDER BY e.requested_at, e.id",
            (since,),
        )
        return {"answers": answers, "escalations": escalations}

    async def conversations(
        self, search: str = "", limit: int = 25, offset: int = 0
    ) -> tuple[list[dict], int]:
        """Questions with their answers and votes, newest first, whose question or answer contains `search`;
        and how many match in all."""
        where = "WHERE a.question ILIKE %(pattern)s OR a.answer ILIKE %(pattern)s"
        async with self._connection() as connection:
            cursor = connection.cursor(row_factory=dict_row)
            parameters = {"pattern": like_pattern(search), "limit": limit, "offset": offset}
            await cursor.execute(f"SELECT count(*) AS total FROM journal_answers a {where}", parameters)
            total = (await cursor.fetchone())["total"]
            await cursor.execute(
                f"{_ANSWERS_WITH_VOTES} {where} GROUP BY a.id ORDER BY a.asked_at DESC, a.id DESC"
                " LIMIT %(limit)s OFFSET %(offset)s",
                parameters,
            )
            return await cursor.fetchall(), total

    async def feedback_for(self, answer_id: str) -> list[tuple[int, str | None, str | None]]:
        """Votes recorded for an answer: (vote, comment, voter)."""
        rows = await self._rows(
            "SELECT vote, comment, voter FROM journal_feedback WHERE answer_id = %s ORDER BY voted_at, id",
            (answer_id,),
        )
        return [(row["vote"], row["comment"], row["voter"]) for row in rows]

    async def answers(self) -> list[dict]:
        """Every recorded answer, oldest first."""
        return await self._rows(f"SELECT {_ANSWER} FROM journal_answers a ORDER BY a.asked_at, a.id")
