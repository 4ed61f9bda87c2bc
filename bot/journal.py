"""Durable record of every question, answer, refusal, latency and feedback vote (SQLite in the data dir)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

from bot.models import Answer, Question

_SCHEMA = """
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


class UnknownAnswer(KeyError):
    """Feedback was given for an answer id the journal has never seen."""


class Journal:
    """Appends answers and feedback to an SQLite file; every call runs off the event loop."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def _write_answer(self, question: Question, answer: Answer) -> None:
        citations = json.dumps([c.to_dict() for c in answer.citations])
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
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
                ),
            )

    def _write_feedback(self, answer_id: str, vote: int, comment: str | None, voter: str | None) -> None:
        with self._connect() as connection:
            if connection.execute("SELECT 1 FROM answers WHERE id = ?", (answer_id,)).fetchone() is None:
                msg = f"No answer with id {answer_id!r}"
                raise UnknownAnswer(msg)
            connection.execute(
                "INSERT INTO feedback VALUES (?,?,?,?,?)", (answer_id, vote, comment, voter, time.time())
            )

    async def record_answer(self, question: Question, answer: Answer) -> None:
        """Store a question and the answer given."""
        await asyncio.to_thread(self._write_answer, question, answer)

    async def record_feedback(
        self, answer_id: str, vote: int, comment: str | None, voter: str | None
    ) -> None:
        """Store a vote (+1 or -1) on an answer."""
        await asyncio.to_thread(self._write_feedback, answer_id, vote, comment, voter)

    def feedback_for(self, answer_id: str) -> list[tuple[int, str | None, str | None]]:
        """Votes recorded for an answer: (vote, comment, voter)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT vote, comment, voter FROM feedback WHERE answer_id = ? ORDER BY voted_at",
                (answer_id,),
            )
            return list(rows)

    def answers(self) -> list[dict]:
        """Every recorded answer, oldest first."""
        with self._connect() as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute("SELECT * FROM answers ORDER BY asked_at")]
