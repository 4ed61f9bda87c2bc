"""The journal in PostgreSQL: every question, answer, refusal, latency and vote, shared by all replicas."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg
from psycopg.types.json import Jsonb

from bot.journal import JournalError, UnknownAnswer
from bot.models import Answer, Question
from knowledge.backend import DatabaseUnavailable
from knowledge.database import Database

_ANSWERS = (
    "SELECT id, extract(epoch FROM asked_at)::float8 AS asked_at, asker, channel, question,"
    " standalone_query, answer, refused::int AS refused, confidence, generator, citations::text AS citations,"
    " total_ms FROM journal_answers ORDER BY asked_at, id"
)


class PostgresJournal:
    """The Journal's records (answers, and votes on them) in the tables journal_answers and journal_feedback."""

    def __init__(self, database: Database):
        self.database = database

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        try:
            async with self.database.connect() as connection:
                yield connection
        except (psycopg.Error, DatabaseUnavailable) as error:
            msg = f"Could not use the journal in PostgreSQL ({error}): check HELPDESK_DATABASE_URL and the server"
            raise JournalError(msg) from error

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
        )
        async with self._connection() as connection:
            await connection.execute(
                "INSERT INTO journal_answers (id, asker, channel, question, standalone_query, answer, refused,"
                " confidence, generator, citations, total_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                row,
            )

    async def record_feedback(
        self, answer_id: str, vote: int, comment: str | None, voter: str | None
    ) -> None:
        """Store a vote (+1 or -1) on an answer; a voter's later vote on the same answer replaces theirs."""
        try:
            async with self._connection() as connection:
                await connection.execute(
                    "INSERT INTO journal_feedback (answer_id, vote, comment, voter) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (answer_id, voter) DO UPDATE SET vote = excluded.vote,"
                    " comment = excluded.comment, voted_at = now()",
                    (answer_id, vote, comment, voter),
                )
        except JournalError as error:
            if isinstance(error.__cause__, psycopg.errors.ForeignKeyViolation):
                msg = f"No answer with id {answer_id!r}"
                raise UnknownAnswer(msg) from None
            raise

    async def afeedback_for(self, answer_id: str) -> list[tuple[int, str | None, str | None]]:
        """Votes recorded for an answer: (vote, comment, voter)."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT vote, comment, voter FROM journal_feedback WHERE answer_id = %s ORDER BY voted_at, id",
                (answer_id,),
            )
            return [tuple(row) for row in await cursor.fetchall()]

    async def aanswers(self) -> list[dict]:
        """Every recorded answer, oldest first, with the columns of the SQLite journal."""
        async with self._connection() as connection:
            cursor = connection.cursor(row_factory=psycopg.rows.dict_row)
            await cursor.execute(_ANSWERS)
            return await cursor.fetchall()
