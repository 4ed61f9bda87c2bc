"""Discord answer threads' turns in PostgreSQL, so a follow-up is answered in context by any replica."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from bot.models import Turn
from connectors.thread_memory import THREAD_TURNS, ThreadMemoryError
from knowledge.database import Database

# A thread quiet for this long is forgotten: a month, well past Discord's longest auto-archive (a week), so
# a thread people come back to keeps its context, while the table holds only threads in use.
THREAD_MEMORY = timedelta(days=30)


class PostgresThreadMemory:
    """The turns of each answer thread in the table discord_threads, the latest THREAD_TURNS of each."""

    def __init__(self, database: Database):
        self.database = database

    def _connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        return self.database.using("the Discord thread memory", ThreadMemoryError)

    async def turns(self, thread_id: str) -> tuple[Turn, ...] | None:
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT turns FROM discord_threads WHERE thread_id = %s AND expires_at > now()", (thread_id,)
            )
            row = await cursor.fetchone()
        return None if row is None else tuple(Turn(turn["role"], turn["text"]) for turn in row[0])

    async def add(self, thread_id: str, question: str, answer: str) -> None:
        new = [{"role": "user", "text": question}, {"role": "assistant", "text": answer}]
        async with self._connection() as connection, connection.transaction():
            await connection.execute("DELETE FROM discord_threads WHERE expires_at <= now()")
            # One statement, so follow-ups answered at once by two replicas both keep their turns.
            await connection.execute(
                "INSERT INTO discord_threads AS t (thread_id, turns, expires_at)"
                " VALUES (%(thread)s, %(new)s, now() + %(kept)s)"
                " ON CONFLICT (thread_id) DO UPDATE SET expires_at = excluded.expires_at, turns = ("
                "  SELECT jsonb_agg(turn ORDER BY position)"
                "  FROM jsonb_array_elements(t.turns || excluded.turns) WITH ORDINALITY AS e(turn, position)"
                "  WHERE position > jsonb_array_length(t.turns || excluded.turns) - %(keep)s)",
                {"thread": thread_id, "new": Jsonb(new), "kept": THREAD_MEMORY, "keep": THREAD_TURNS},
            )
