"""A durable, expiring set of keys (SQLite in the data dir): events already handled, threads the bot is in."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from connectors.pg_dedupe import PostgresLedger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_expiry ON seen(expires_at);
"""

DAY_S = 24 * 3600
# Slack redelivers for about an hour at most; a week is plenty and keeps the file small.
EVENT_TTL_S = 7 * DAY_S
PRUNE_EVERY_S = 3600

log = logging.getLogger(__name__)


def open_ledger(settings: Settings, name: str) -> Ledger | PostgresLedger:
    """The ledger `name`: in PostgreSQL with HELPDESK_DATABASE_URL (shared by replicas), else in the data dir."""
    if settings.database_url is None:
        return Ledger(settings.data_dir / f"{name}.sqlite3")
    from bot.runtime import open_database
    from connectors.pg_dedupe import PostgresLedger

    return PostgresLedger(open_database(settings))


class SqliteFile:
    """A SQLite database in the data dir with its schema; one in memory (for this process) if it cannot be written."""

    def __init__(self, path: Path, schema: str, if_unwritable: str):
        self.path = path
        self._database, self._in_memory = str(path), None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self.connect() as connection:
                connection.executescript(schema)
        except (OSError, sqlite3.Error) as error:
            # The bot goes on, with what it records here kept by this process only, until it restarts.
            log.error("Cannot write %s (%s): %s; make HELPDESK_DATA_DIR writable", path, error, if_unwritable)
            self._database = f"file:sqlite-{id(self)}?mode=memory&cache=shared"
            self._in_memory = self.connect()  # a shared in-memory database lives while one connection does
            self._in_memory.executescript(schema)

    def connect(self) -> sqlite3.Connection:
        """A new autocommit connection (transactions are opened explicitly), in WAL mode."""
        connection = sqlite3.connect(self._database, timeout=10, isolation_level=None, uri=True)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection


class Ledger:
    """Remembers keys across restarts until they expire; `claim` is atomic across tasks and processes."""

    def __init__(self, path: Path):
        self.path = path
        self._connect = SqliteFile(
            path, _SCHEMA, "deliveries are recognised only until the bot restarts"
        ).connect
        self._pruned_at = 0.0

    def _claim(self, keys: tuple[str, ...], ttl_s: float) -> bool:
        now = time.time()
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            placeholders = ",".join("?" * len(keys))
            taken = connection.execute(
                f"SELECT 1 FROM seen WHERE key IN ({placeholders}) AND expires_at > ?", (*keys, now)
            ).fetchone()
            if taken is None:
                connection.executemany(
                    "INSERT OR REPLACE INTO seen VALUES (?, ?)", [(key, now + ttl_s) for key in keys]
                )
            if now - self._pruned_at > PRUNE_EVERY_S:
                connection.execute("DELETE FROM seen WHERE expires_at <= ?", (now,))
                self._pruned_at = now
            connection.execute("COMMIT")
            return taken is None
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def _contains(self, key: str) -> bool:
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT 1 FROM seen WHERE key = ? AND expires_at > ?", (key, time.time())
            ).fetchone()
            return row is not None
        finally:
            connection.close()

    async def claim(self, *keys: str, ttl_s: float = EVENT_TTL_S) -> bool:
        """Record every key and return True, or return False (recording nothing) if any was already seen."""
        if not keys:
            msg = "claim() needs at least one key"
            raise ValueError(msg)
        return await asyncio.to_thread(self._claim, keys, ttl_s)

    async def remember(self, key: str, ttl_s: float) -> None:
        """Record a key (or extend its life) whether or not it was seen before."""
        await asyncio.to_thread(self._claim_or_extend, key, ttl_s)

    def _claim_or_extend(self, key: str, ttl_s: float) -> None:
        connection = self._connect()
        try:
            connection.execute("INSERT OR REPLACE INTO seen VALUES (?, ?)", (key, time.time() + ttl_s))
        finally:
            connection.close()

    async def contains(self, key: str) -> bool:
        """True while a key is remembered."""
        return await asyncio.to_thread(self._contains, key)
