"""Discord's offers waiting for a click in PostgreSQL, so the replica that gets the click finds them."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from connectors.discord_offers import OffersError
from knowledge.database import Database


class PostgresOffers:
    """The offers of one kind in the table discord_offers, keyed `<kind>:<key>`, until they expire."""

    def __init__(self, database: Database, kind: str, kept_for: timedelta):
        self.database = database
        self.kind = kind
        self.kept_for = kept_for

    def _connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        return self.database.using("the Discord offers", OffersError)

    async def keep(self, key: str, offer: dict) -> None:
        async with self._connection() as connection, connection.transaction():
            await connection.execute("DELETE FROM discord_offers WHERE expires_at <= now()")
            await connection.execute(
                "INSERT INTO discord_offers (key, offer, expires_at) VALUES (%s, %s, now() + %s)"
                " ON CONFLICT (key) DO UPDATE SET offer = excluded.offer, expires_at = excluded.expires_at",
                (f"{self.kind}:{key}", Jsonb(offer), self.kept_for),
            )

    async def get(self, key: str) -> dict | None:
        return await self._live("SELECT offer, expires_at > now() FROM discord_offers WHERE key = %s", key)

    async def take(self, key: str) -> dict | None:
        # One statement: of two clicks at once, on two replicas, one gets the offer.
        return await self._live(
            "DELETE FROM discord_offers WHERE key = %s RETURNING offer, expires_at > now()", key
        )

    async def _live(self, statement: str, key: str) -> dict | None:
        """The offer a statement returns with whether it is still live (its first and second columns)."""
        async with self._connection() as connection:
            cursor = await connection.execute(statement, (f"{self.kind}:{key}",))
            row = await cursor.fetchone()
        return row[0] if row is not None and row[1] else None
