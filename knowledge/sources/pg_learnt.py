"""Answers learnt from people in PostgreSQL (HELPDESK_DATABASE_URL): saved by one replica, seen by every one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict

from psycopg.types.json import Jsonb

from knowledge.database import Database
from knowledge.documents import Skipped
from knowledge.sources.base import SourceItem
from knowledge.sources.learnt import (
    LEARNT_SOURCE,
    LearntEntry,
    check_entry_id,
    entry_item,
    entry_json,
    no_such_entry,
)


class PostgresLearntAnswers:
    """The learnt answers in the table `learnt_answers`, one JSON entry per row; also the source indexing them.

    The same calls as LearntAnswers (the data directory's folder), so either serves the bot.
    """

    name = LEARNT_SOURCE
    where = "the PostgreSQL database of HELPDESK_DATABASE_URL"

    def __init__(self, database: Database):
        self.database = database

    async def require(self, entry_id: str) -> None:
        """UnknownEntry when there is no entry with this id."""
        check_entry_id(entry_id)
        async with self.database.connect() as connection:
            cursor = await connection.execute("SELECT 1 FROM learnt_answers WHERE id = %s", (entry_id,))
            if await cursor.fetchone() is None:
                raise no_such_entry(entry_id)

    async def save(self, entry: LearntEntry) -> None:
        """Store an entry (replacing one with the same id)."""
        check_entry_id(entry.id)
        async with self.database.connect() as connection:
            await connection.execute(
                "INSERT INTO learnt_answers (id, entry) VALUES (%s, %s)"
                " ON CONFLICT (id) DO UPDATE SET entry = excluded.entry, saved_at = now()",
                (entry.id, Jsonb(asdict(entry))),
            )

    async def remove(self, entry_id: str) -> None:
        """Delete an entry; UnknownEntry when there is none with this id."""
        check_entry_id(entry_id)
        async with self.database.connect() as connection:
            cursor = await connection.execute("DELETE FROM learnt_answers WHERE id = %s", (entry_id,))
            if cursor.rowcount == 0:
                raise no_such_entry(entry_id)

    async def entries(self) -> list[LearntEntry]:
        """Every readable entry, oldest first."""
        found = []
        for _, entry in await self._rows():
            try:
                found.append(LearntEntry(**entry))
            except TypeError:
                continue
        return sorted(found, key=lambda entry: entry.saved_at)

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """One item per entry, its bytes as the data directory's file of the entry would hold them."""
        for entry_id, entry in await self._rows():
            try:
                raw = entry_json(LearntEntry(**entry))
            except TypeError:  # not an entry: its loader says so
                raw = json.dumps(entry).encode()
            yield entry_item(entry_id, raw)

    async def _rows(self) -> list[tuple[str, dict]]:
        async with self.database.connect() as connection:
            cursor = await connection.execute("SELECT id, entry FROM learnt_answers ORDER BY id")
            return await cursor.fetchall()
