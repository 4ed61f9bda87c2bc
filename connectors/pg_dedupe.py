"""The Ledger's expiring set of keys in PostgreSQL, so that replicas share events handled and threads joined."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from connectors.dedupe import EVENT_TTL_S
from knowledge.database import Database


class PostgresLedger:
    """Remembers keys until they expire, in the table `ledger`; `claim` is atomic across every replica."""

    def __init__(self, database: Database):
        self.database = database

    async def claim(self, *keys: str, ttl_s: float = EVENT_TTL_S) -> bool:
        """Record every key and return True, or return False (recording nothing) if any was already seen."""
        if not keys:
            msg = "claim() needs at least one key"
            raise ValueError(msg)
        async with self.database.connect() as connection, connection.transaction():
            # A key claimed by a transaction not yet committed makes this one wait for its outcome.
            cursor = await connection.execute(
                "INSERT INTO ledger (key, expires_at) SELECT key, now() + %s FROM unnest(%s::text[]) AS key"
                " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at"
                " WHERE ledger.expires_at <= now() RETURNING key",
                (timedelta(seconds=ttl_s), sorted(set(keys))),
            )
            claimed = len(await cursor.fetchall()) == len(set(keys))
            if not claimed:
                raise psycopg.Rollback  # nothing recorded
            await connection.execute("DELETE FROM ledger WHERE expires_at <= now()")
        return claimed

    async def remember(self, key: str, ttl_s: float) -> None:
        """Record a key (or extend its life) whether or not it was seen before."""
        async with self.database.connect() as connection:
            await connection.execute(
                "INSERT INTO ledger (key, expires_at) VALUES (%s, now() + %s)"
                " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at",
                (key, timedelta(seconds=ttl_s)),
            )

    async def contains(self, key: str) -> bool:
        """True while a key is remembered."""
        async with self.database.connect() as connection:
            cursor = await connection.execute(
                "SELECT 1 FROM ledger WHERE key = %s AND expires_at > now()", (key,)
            )
            return await cursor.fetchone() is not None
