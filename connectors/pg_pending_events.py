"""Pending events in PostgreSQL, so that any replica takes over an event whose replica died answering it."""

from __future__ import annotations

from datetime import timedelta

from psycopg.types.json import Jsonb

from connectors.pending_events import (
    ADD_EVENT,
    ANSWERED,
    EVENT_COLUMNS,
    FINISHED_KEPT_S,
    GIVEN_UP,
    MAX_TAKEOVERS,
    SWEEP_BATCH,
    TOKEN_FIELD,
    PendingEvent,
    pending_from_rows,
)
from knowledge.database import Database

_ERASE_TOKEN = f"payload = payload - '{TOKEN_FIELD}'"
_LAPSED = "platform = %s AND finished_at IS NULL AND lease_until <= now()"


class PostgresPendingEvents:
    """Pending events of one platform in the table `pending_events`; a takeover is atomic across replicas."""

    def __init__(self, database: Database, platform: str):
        self.database = database
        self.platform = platform

    async def add(self, key: str, payload: dict, lease_s: float) -> PendingEvent | None:
        """Record an event just taken (again, if a redelivery was taken after its lease lapsed): the record,
        whose `attempts` above 1 and `reply_id` tell a retaken event and how far its reply got (None: the event
        was finished)."""
        async with self.database.connect() as connection:
            cursor = await connection.execute(
                f"{ADD_EVENT.format(p='%s', lease_until='now() + %s')} RETURNING {EVENT_COLUMNS}",
                (key, self.platform, Jsonb(payload), timedelta(seconds=lease_s)),
            )
            return next(iter(pending_from_rows(await cursor.fetchall())), None)

    async def renew(self, key: str, lease_s: float, reply_id: str | None = None) -> None:
        """Extend the lease of an event still being answered; note the message its answer goes into."""
        async with self.database.connect() as connection:
            await connection.execute(
                "UPDATE pending_events SET lease_until = now() + %s, reply_id = coalesce(%s, reply_id)"
                " WHERE key = %s AND finished_at IS NULL",
                (timedelta(seconds=lease_s), reply_id, key),
            )

    async def finish(self, key: str, outcome: str = ANSWERED) -> None:
        """Mark an event answered: no replica takes it over again."""
        async with self.database.connect() as connection:
            await connection.execute(
                f"UPDATE pending_events SET finished_at = now(), outcome = %s, {_ERASE_TOKEN}"
                " WHERE key = %s AND finished_at IS NULL",
                (outcome, key),
            )

    async def take_expired(
        self, lease_s: float, limit: int = SWEEP_BATCH, max_takeovers: int = MAX_TAKEOVERS
    ) -> tuple[list[PendingEvent], list[PendingEvent]]:
        """Take over (with a new lease) unfinished events whose lease lapsed, and give up on those taken over
        `max_takeovers` times already: (taken, given up). Rows another replica is taking are skipped."""
        async with self.database.connect() as connection, connection.transaction():
            cursor = await connection.execute(
                f"UPDATE pending_events SET finished_at = now(), outcome = %s, {_ERASE_TOKEN} WHERE key IN (SELECT key FROM"
                f" pending_events WHERE {_LAPSED} AND attempts > %s FOR UPDATE SKIP LOCKED) RETURNING {EVENT_COLUMNS}",
                (GIVEN_UP, self.platform, max_takeovers),
            )
            given_up = pending_from_rows(await cursor.fetchall())
            cursor = await connection.execute(
                "UPDATE pending_events SET attempts = attempts + 1, lease_until = now() + %s WHERE key IN"
                f" (SELECT key FROM pending_events WHERE {_LAPSED} ORDER BY lease_until LIMIT %s"
                f" FOR UPDATE SKIP LOCKED) RETURNING {EVENT_COLUMNS}",
                (timedelta(seconds=lease_s), self.platform, limit),
            )
            taken = pending_from_rows(await cursor.fetchall())
            await connection.execute(
                "DELETE FROM pending_events WHERE finished_at <= now() - %s",
                (timedelta(seconds=FINISHED_KEPT_S),),
            )
        return taken, given_up
