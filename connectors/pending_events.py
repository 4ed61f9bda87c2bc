"""Chat events acknowledged and not answered yet, kept until answered so that another replica finishes them.

A replica that takes an event records what answering it needs with a lease it renews while it answers, and
marks the record finished once the answer is posted. The only credential a record may hold is the short-lived
`token` of a Discord interaction (needed to edit its deferred reply): it is erased when the record finishes. Every replica's sweeper takes over the
records whose lease lapsed (their replica died, or was stopped mid-answer) and answers them the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.dedupe import DAY_S, PRUNE_EVERY_S, SqliteFile

if TYPE_CHECKING:
    from bot.settings import Settings
    from connectors.pg_pending_events import PostgresPendingEvents

log = logging.getLogger(__name__)

# How often each replica looks for records whose lease lapsed: one indexed query per replica every 5 s is
# nothing to the database, and an orphaned event is then answered at most 5 s after its lease (30 s) lapsed.
SWEEP_INTERVAL_S = 5.0
# Takeovers of one event before it is given up: a replica dying while answering is rare, so an event whose
# every answerer stopped three times over is taken to be what stops them, and must not take more down.
MAX_TAKEOVERS = 3
# Records one replica takes over at one sweep, so that a dead replica's events are shared by the survivors.
SWEEP_BATCH = 10
# A finished record is kept this long (the ledger already stops Slack's redeliveries), then pruned.
FINISHED_KEPT_S = DAY_S

ANSWERED, GIVEN_UP = "answered", "given up"
# The payload field holding a short-lived credential, removed from the payload when its record finishes.
TOKEN_FIELD = "token"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_events (
    key TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    payload TEXT NOT NULL,
    lease_until REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    reply_id TEXT,
    finished_at REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS pending_events_due ON pending_events (platform, lease_until)
    WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS pending_events_finished ON pending_events (finished_at);
"""
EVENT_COLUMNS = "key, payload, attempts, reply_id"
# Records an event taken; a redelivery taken after the lease lapsed counts one more attempt. Formatted with
# each store's parameter marker `p` and its expression for the lease's end.
ADD_EVENT = (
    "INSERT INTO pending_events (key, platform, payload, lease_until) VALUES ({p}, {p}, {p}, {lease_until})"
    " ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, lease_until = excluded.lease_until,"
    " attempts = pending_events.attempts + 1 WHERE pending_events.finished_at IS NULL"
)
_ERASE_TOKEN = f"payload = json_remove(payload, '$.{TOKEN_FIELD}')"


@dataclass(frozen=True)
class PendingEvent:
    """An event being answered: its key, what answering it needs, answering attempts so far, and how far its
    reply got: the message the answer is being written into (a Slack ts) once posted, or the answer and how
    many of its messages were sent (a Discord `Delivery`)."""

    key: str
    payload: dict
    attempts: int
    reply_id: str | None = None


def open_pending_events(settings: Settings, platform: str) -> PendingEvents | PostgresPendingEvents:
    """`platform`'s pending events: in PostgreSQL with HELPDESK_DATABASE_URL (shared), else in the data dir."""
    if settings.database_url is None:
        return PendingEvents(settings.data_dir / "pending-events.sqlite3", platform)
    from bot.runtime import open_database
    from connectors.pg_pending_events import PostgresPendingEvents

    return PostgresPendingEvents(open_database(settings), platform)


class PendingEvents:
    """Pending events of one platform in a SQLite file of the data dir: a restarted bot finishes them."""

    def __init__(self, path: Path, platform: str):
        self.platform = platform
        self._connect = SqliteFile(
            path, _SCHEMA, "events being answered are finished only while the bot runs"
        ).connect
        self._pruned_at = 0.0

    def _run(self, statement: str, parameters: tuple) -> list[tuple]:
        """Run one statement in its own connection; the rows it returns."""
        connection = self._connect()
        try:
            return connection.execute(statement, parameters).fetchall()
        finally:
            connection.close()

    async def add(self, key: str, payload: dict, lease_s: float) -> PendingEvent | None:
        """Record an event just taken (again, if a redelivery was taken after its lease lapsed): the record,
        whose `attempts` above 1 and `reply_id` tell a retaken event and how far its reply got (None: the event
        was finished)."""
        rows = await asyncio.to_thread(
            self._run,
            f"{ADD_EVENT.format(p='?', lease_until='?')} RETURNING {EVENT_COLUMNS}",
            (key, self.platform, json.dumps(payload), time.time() + lease_s),
        )
        return next(iter(pending_from_rows(rows)), None)

    async def renew(self, key: str, lease_s: float, reply_id: str | None = None) -> None:
        """Extend the lease of an event still being answered; note the message its answer goes into."""
        await asyncio.to_thread(
            self._run,
            "UPDATE pending_events SET lease_until = ?, reply_id = coalesce(?, reply_id)"
            " WHERE key = ? AND finished_at IS NULL",
            (time.time() + lease_s, reply_id, key),
        )

    async def finish(self, key: str, outcome: str = ANSWERED) -> None:
        """Mark an event answered: no replica takes it over again."""
        await asyncio.to_thread(
            self._run,
            f"UPDATE pending_events SET finished_at = ?, outcome = ?, {_ERASE_TOKEN}"
            " WHERE key = ? AND finished_at IS NULL",
            (time.time(), outcome, key),
        )

    async def take_expired(
        self, lease_s: float, limit: int = SWEEP_BATCH, max_takeovers: int = MAX_TAKEOVERS
    ) -> tuple[list[PendingEvent], list[PendingEvent]]:
        """Take over (with a new lease) unfinished events whose lease lapsed, and give up on those taken over
        `max_takeovers` times already: (taken, given up)."""
        return await asyncio.to_thread(self._take_expired, lease_s, limit, max_takeovers)

    def _take_expired(self, lease_s: float, limit: int, max_takeovers: int):
        now = time.time()
        lapsed = "platform = ? AND finished_at IS NULL AND lease_until <= ?"
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            given_up = pending_from_rows(
                connection.execute(
                    f"UPDATE pending_events SET finished_at = ?, outcome = ?, {_ERASE_TOKEN}"
                    f" WHERE {lapsed} AND attempts > ?"
                    f" RETURNING {EVENT_COLUMNS}",
                    (now, GIVEN_UP, self.platform, now, max_takeovers),
                ).fetchall()
            )
            taken = pending_from_rows(
                connection.execute(
                    "UPDATE pending_events SET attempts = attempts + 1, lease_until = ? WHERE key IN"
                    f" (SELECT key FROM pending_events WHERE {lapsed} ORDER BY lease_until LIMIT ?)"
                    f" RETURNING {EVENT_COLUMNS}",
                    (now + lease_s, self.platform, now, limit),
                ).fetchall()
            )
            if now - self._pruned_at > PRUNE_EVERY_S:
                connection.execute(
                    "DELETE FROM pending_events WHERE finished_at <= ?", (now - FINISHED_KEPT_S,)
                )
                self._pruned_at = now
            connection.execute("COMMIT")
            return taken, given_up
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()


def pending_from_rows(rows) -> list[PendingEvent]:
    return [
        PendingEvent(key, payload if isinstance(payload, dict) else json.loads(payload), attempts, reply_id)
        for key, payload, attempts, reply_id in rows
    ]


@contextlib.asynccontextmanager
async def leased(pending: PendingEvents | PostgresPendingEvents, key: str, lease_s: float):
    """Keep renewing the lease on event `key` (every third of `lease_s`) while the block answers it."""

    async def renew_forever() -> None:
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await pending.renew(key, lease_s)
            except Exception as error:  # the answer goes on; another replica may then answer it too
                log.warning("%s: could not renew the lease on %s (%s)", pending.platform, key, error)

    renewal = asyncio.create_task(renew_forever())
    try:
        yield
    finally:
        renewal.cancel()


@dataclass
class PendingEventSweeper:
    """Every `interval_s`, takes over a platform's pending events whose lease lapsed and resumes each one
    (with a new lease of `lease_s`)."""

    pending: PendingEvents | PostgresPendingEvents
    resume: Callable[[PendingEvent], Awaitable[None]]
    lease_s: float
    interval_s: float = SWEEP_INTERVAL_S
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        """Sweep now, then every interval, until stopped."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.pending.platform}-pending-sweeper")

    async def stop(self) -> None:
        """Stop sweeping (events already resumed go on)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as error:  # the database is down, say: the next sweep tries again
                log.warning(
                    "%s: could not look for events left unanswered (%s)", self.pending.platform, error
                )
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> int:
        """One pass: give up on events taken over too often, resume the others; the number resumed."""
        taken, given_up = await self.pending.take_expired(self.lease_s)
        for event in given_up:
            log.error(
                "%s: gave up on event %s after %d attempts to answer it, each stopped before it was done",
                self.pending.platform,
                event.key,
                event.attempts,
            )
        for event in taken:
            log.warning(
                "%s: taking over event %s, left unanswered (attempt %d)",
                self.pending.platform,
                event.key,
                event.attempts,
            )
            await self.resume(event)
        return len(taken)
