"""Durable record of every question, answer, refusal, latency, vote and hand-off: the interface, and SQLite.

Two stores implement `Journal` alike: SqliteJournal (the data directory's journal.sqlite3, the default)
and bot.pg_journal.PostgresJournal (HELPDESK_DATABASE_URL, shared by replicas).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from bot.models import Answer, Question

T = TypeVar("T")

_TABLES = """
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    asked_at REAL NOT NULL,
    asker TEXT,
    channel TEXT,
    question TEXT NOT NULL,
    standalone_query TEXT,
    answer TEXT NOT NULL,
    refused INTEGER NOT NULL,
    confidence REAL NOT NULL,
    generator TEXT,
    citations TEXT NOT NULL,
    total_ms REAL
);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT NOT NULL REFERENCES answers(id),
    vote INTEGER NOT NULL,
    comment TEXT,
    voter TEXT,
    voted_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_answer ON feedback(answer_id);
"""

# Schema versions (PRAGMA user_version), applied in order inside one transaction each.
_MIGRATIONS = (
    # 1: one vote per person per answer. Journals written before kept every click: keep each person's latest.
    """
    DELETE FROM feedback
    WHERE voter IS NOT NULL AND rowid NOT IN (
        SELECT rowid FROM (
            SELECT rowid, ROW_NUMBER() OVER (
                PARTITION BY answer_id, voter ORDER BY voted_at DESC, rowid DESC
            ) AS newest
            FROM feedback WHERE voter IS NOT NULL
        ) WHERE newest = 1
    );
    CREATE UNIQUE INDEX IF NOT EXISTS feedback_one_per_voter ON feedback(answer_id, voter);
    """,
    # 2: the platform and conversation of each question, and the hand-offs to a person.
    """
    ALTER TABLE answers ADD COLUMN platform TEXT;
    ALTER TABLE answers ADD COLUMN conversation_id TEXT;
    CREATE TABLE IF NOT EXISTS escalations (
        answer_id TEXT NOT NULL REFERENCES answers(id),
        requested_by TEXT,
        platform TEXT,
        posted_to TEXT,
        requested_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS escalations_answer ON escalations(answer_id);
    """,
)

# Answers with how many 👍 and 👎 each got; callers add WHERE, then GROUP BY a.id.
_ANSWERS_WITH_VOTES = (
    "SELECT a.*, COALESCE(SUM(CASE WHEN f.vote > 0 THEN 1 END), 0) AS up_votes, "
    "COALESCE(SUM(CASE WHEN f.vote < 0 THEN 1 END), 0) AS down_votes "
    "FROM answers a LEFT JOIN feedback f ON f.answer_id = a.id "
)

_ANSWER_COLUMNS = (
    "id, asked_at, asker, channel, question, standalone_query, answer, refused, confidence, generator, "
    "citations, total_ms, platform, conversation_id"
)


def _decoded(row: sqlite3.Row) -> dict:
    """An answers row as a dict, its citations decoded from JSON."""
    return {**dict(row), "citations": json.loads(row["citations"])}


class JournalError(RuntimeError):
    """The journal could not be read or written (read-only or full disk, damaged file); the cause is chained."""


class UnknownAnswer(KeyError):
    """Feedback was given for an answer id the journal has never seen."""


def unknown_answer(answer_id: str) -> UnknownAnswer:
    """The error for a vote or hand-off on an answer the journal has never seen."""
    msg = f"No answer with id {answer_id!r}"
    return UnknownAnswer(msg)


def like_pattern(search: str) -> str:
    """A LIKE pattern (escaped with a backslash) matching text that contains `search` as typed."""
    return "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Journal(Protocol):
    """What the bot records and reads back. Answer rows are dicts of the answer's columns: id, asked_at (Unix
    time), asker, channel, question, standalone_query, answer, refused (0 or 1), confidence, generator,
    citations (decoded), total_ms, platform, conversation_id; rows with votes add up_votes and down_votes.
    """

    async def record_answer(self, question: Question, answer: Answer) -> None:
        """Store a question and the answer given."""

    async def record_feedback(
        self, answer_id: str, vote: int, comment: str | None, voter: str | None
    ) -> None:
        """Store a vote (+1 or -1); a voter's later vote on the same answer replaces theirs. UnknownAnswer for
        an id never recorded."""

    async def record_escalation(
        self, answer_id: str, requested_by: str | None, platform: str | None, posted_to: str | None
    ) -> None:
        """Store that someone asked a person of the support team to take over an answer (UnknownAnswer…)."""

    async def answer(self, answer_id: str) -> dict | None:
        """One recorded answer by id, or None when the journal has never seen it."""

    async def continue_in(self, answer_id: str, conversation_id: str) -> None:
        """The conversation of an answer moved on (a Discord /ask answer's thread): record where it went."""

    async def awaiting_a_person(self, platform: str, conversation_id: str) -> dict | None:
        """The latest answer of a conversation that was refused or handed off to a person, if any."""

    async def activity_since(self, since: float) -> dict[str, list[dict]]:
        """What happened since a Unix time, oldest first: "answers" (with their votes) and "escalations"
        (answer_id, requested_by, platform, posted_to, requested_at, and the answer's question)."""

    async def conversations(
        self, search: str = "", limit: int = 25, offset: int = 0
    ) -> tuple[list[dict], int]:
        """Answers with their votes, newest first, whose question or answer contains `search` (ignoring
        case); and how many match in all."""

    async def feedback_for(self, answer_id: str) -> list[tuple[int, str | None, str | None]]:
        """Votes recorded for an answer, oldest first: (vote, comment, voter)."""

    async def answers(self) -> list[dict]:
        """Every recorded answer, oldest first."""


class SqliteJournal:
    """The Journal in an SQLite file; every call runs off the event loop.

    The file is opened (and created or upgraded) on first use, so a journal that cannot be written never
    stops the bot from answering: each failing call raises JournalError saying what to fix.
    """

    def __init__(self, path: Path):
        self.path = path
        self._ready = False
        self._setup_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            if not self._ready:
                self._set_up(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _set_up(self, connection: sqlite3.Connection) -> None:
        with self._setup_lock:
            if self._ready:
                return
            connection.executescript(_TABLES)
            connection.execute("BEGIN IMMEDIATE")  # one process upgrades; the others wait, then see it done
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                for number, migration in enumerate(_MIGRATIONS[version:], start=version + 1):
                    for statement in migration.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {number}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            self._ready = True

    def _run(self, work: Callable[[sqlite3.Connection], T], *, writes: bool = False) -> T:
        """Run `work` in one transaction, with SQLite's errors turned into a JournalError saying what to do.

        A transaction that writes takes the write lock first, so concurrent writers wait their turn instead of
        failing when one of them read before another wrote.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._connect()
        except (OSError, sqlite3.Error) as error:
            raise self._error(error) from error
        try:
            with connection:
                connection.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
                return work(connection)
        except sqlite3.Error as error:
            raise self._error(error) from error
        finally:
            connection.close()

    def _error(self, error: Exception) -> JournalError:
        msg = (
            f"Could not use the journal {self.path} ({error}): make sure the data directory "
            "(HELPDESK_DATA_DIR) is writable and the disk is not full, or move a damaged file aside"
        )
        return JournalError(msg)

    def _write_answer(self, question: Question, answer: Answer) -> None:
        citations = json.dumps([c.to_dict() for c in answer.citations])
        row = (
            answer.id,
            time.time(),
            question.asker,
            question.channel,
            question.text,
            answer.standalone_query,
            answer.text,
            int(answer.refused),
            answer.confidence,
            answer.generator,
            citations,
            answer.timings_ms.get("total"),
            question.platform,
            question.conversation_id,
        )
        insert = f"INSERT INTO answers ({_ANSWER_COLUMNS}) VALUES ({','.join('?' * len(row))})"
        self._run(lambda connection: connection.execute(insert, row), writes=True)

    def _require_answer(self, connection: sqlite3.Connection, answer_id: str) -> None:
        if connection.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
            raise unknown_answer(answer_id)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read off the event loop, rows as sqlite3.Row."""

        def read(connection: sqlite3.Connection) -> T:
            connection.row_factory = sqlite3.Row
            return work(connection)

        return await asyncio.to_thread(self._run, read)

    async def _write(self, work: Callable[[sqlite3.Connection], object]) -> None:
        await asyncio.to_thread(self._run, work, writes=True)

    async def record_answer(self, question: Question, answer: Answer) -> None:
        """Store a question and the answer given."""
        await asyncio.to_thread(self._write_answer, question, answer)

    async def record_feedback(
        self, answer_id: str, vote: int, comment: str | None, voter: str | None
    ) -> None:
        """Store a vote (+1 or -1) on an answer; a voter's later vote on the same answer replaces theirs."""

        def write(connection: sqlite3.Connection) -> None:
            self._require_answer(connection, answer_id)
            # A person voting again on the same answer changes their vote (anonymous votes are all kept).
            connection.execute(
                "INSERT INTO feedback VALUES (?,?,?,?,?) ON CONFLICT (answer_id, voter) DO UPDATE SET "
                "vote = excluded.vote, comment = excluded.comment, voted_at = excluded.voted_at",
                (answer_id, vote, comment, voter, time.time()),
            )

        await self._write(write)

    async def record_escalation(
        self, answer_id: str, requested_by: str | None, platform: str | None, posted_to: str | None
    ) -> None:
        """Store that someone asked a person of the support team to take over an answer."""

        def write(connection: sqlite3.Connection) -> None:
            self._require_answer(connection, answer_id)
            connection.execute(
                "INSERT INTO escalations VALUES (?,?,?,?,?)",
                (answer_id, requested_by, platform, posted_to, time.time()),
            )

        await self._write(write)

    async def answer(self, answer_id: str) -> dict | None:
        """One recorded answer by id (citations decoded), or None when the journal has never seen it."""

        def read(connection: sqlite3.Connection) -> dict | None:
            row = connection.execute("SELECT * FROM answers WHERE id = ?", (answer_id,)).fetchone()
            return None if row is None else _decoded(row)

        return await self._read(read)

    async def continue_in(self, answer_id: str, conversation_id: str) -> None:
        """The conversation of an answer moved on (a Discord /ask answer's thread): record where it went."""
        update = "UPDATE answers SET conversation_id = ? WHERE id = ?"
        await self._write(lambda connection: connection.execute(update, (conversation_id, answer_id)))

    async def awaiting_a_person(self, platform: str, conversation_id: str) -> dict | None:
        """The latest answer of a conversation that was refused or handed off to a person, if any."""
        query = (
            "SELECT a.* FROM answers a WHERE a.platform = ? AND a.conversation_id = ? AND (a.refused = 1 "
            "OR EXISTS (SELECT 1 FROM escalations e WHERE e.answer_id = a.id)) "
            "ORDER BY a.asked_at DESC, a.id DESC LIMIT 1"
        )

        def read(connection: sqlite3.Connection) -> dict | None:
            row = connection.execute(query, (platform, conversation_id)).fetchone()
            return None if row is None else _decoded(row)

        return await self._read(read)

    async def activity_since(self, since: float) -> dict[str, list[dict]]:
        """What happened since a Unix time: answers (with their votes), escalations (with the question)."""

        def read(connection: sqlite3.Connection) -> dict[str, list[dict]]:
            answers = connection.execute(
                _ANSWERS_WITH_VOTES + "WHERE a.asked_at >= ? GROUP BY a.id ORDER BY a.asked_at, a.id",
                (since,),
            )
            escalations = connection.execute(
                "SELECT e.*, a.question FROM escalations e JOIN answers a ON a.id = e.answer_id "
                "WHERE e.requested_at >= ? ORDER BY e.requested_at",
                (since,),
            )
            return {
                "answers": [_decoded(r) for r in answers],
                "escalations": [dict(r) for r in escalations],
            }

        return await self._read(read)

    async def conversations(
        self, search: str = "", limit: int = 25, offset: int = 0
    ) -> tuple[list[dict], int]:
        """Questions with their answers and votes, newest first, whose question or answer contains `search`;
        and how many match in all."""
        where = "WHERE a.question LIKE ?1 ESCAPE '\\' OR a.answer LIKE ?1 ESCAPE '\\'"

        def read(connection: sqlite3.Connection) -> tuple[list[dict], int]:
            pattern = like_pattern(search)
            total = connection.execute(f"SELECT COUNT(*) FROM answers a {where}", (pattern,)).fetchone()[0]
            rows = connection.execute(
                f"{_ANSWERS_WITH_VOTES} {where} GROUP BY a.id ORDER BY a.asked_at DESC, a.id DESC "
                "LIMIT ?2 OFFSET ?3",
                (pattern, limit, offset),
            )
            return [_decoded(r) for r in rows], total

        return await self._read(read)

    async def feedback_for(self, answer_id: str) -> list[tuple[int, str | None, str | None]]:
        """Votes recorded for an answer: (vote, comment, voter)."""
        query = "SELECT vote, comment, voter FROM feedback WHERE answer_id = ? ORDER BY voted_at, rowid"
        return await self._read(
            lambda connection: [tuple(row) for row in connection.execute(query, (answer_id,))]
        )

    async def answers(self) -> list[dict]:
        """Every recorded answer, oldest first (citations decoded)."""
        query = "SELECT * FROM answers ORDER BY asked_at, id"
        return await self._read(lambda connection: [_decoded(row) for row in connection.execute(query)])
