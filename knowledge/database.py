"""The bot's PostgreSQL database: a pool of connections, numbered migrations applied on start, pgvector."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from knowledge.backend import DatabaseUnavailable, PgvectorMissing

# Each migration runs once, in order, in its own transaction; a released bot never edits one, it adds the
# next. The tables of one index version's passages are created by the sync (their vector size is the
# embedding model's), named index_passages_<version id>, with their keyword postings, index_postings_<version id>.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE index_versions (
        id bigserial PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        published_at timestamptz,
        manifest jsonb NOT NULL,
        dimension integer NOT NULL,
        entries integer NOT NULL DEFAULT 0,
        mean_length double precision NOT NULL DEFAULT 0
    );
    CREATE TABLE index_terms (
        version_id bigint NOT NULL REFERENCES index_versions (id) ON DELETE CASCADE,
        term text NOT NULL,
        entries integer NOT NULL,
        PRIMARY KEY (version_id, term)
    );
    CREATE TABLE served_version (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        version_id bigint NOT NULL REFERENCES index_versions (id)
    );
    CREATE TABLE sync_history (
        id bigserial PRIMARY KEY,
        entry jsonb NOT NULL
    );
    """,
    """
    CREATE TABLE journal_answers (
        id text PRIMARY KEY,
        asked_at timestamptz NOT NULL DEFAULT now(),
        asker text,
        channel text,
        question text NOT NULL,
        standalone_query text,
        answer text NOT NULL,
        refused boolean NOT NULL,
        confidence double precision NOT NULL,
        generator text,
        citations jsonb NOT NULL,
        total_ms double precision
    );
    CREATE TABLE journal_feedback (
        id bigserial PRIMARY KEY,
        answer_id text NOT NULL REFERENCES journal_answers (id),
        vote smallint NOT NULL,
        comment text,
        voter text,
        voted_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (answer_id, voter)
    );
    CREATE TABLE ledger (
        key text PRIMARY KEY,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX ledger_expiry ON ledger (expires_at);
    """,
    # 3: the platform and conversation of each question, and the hand-offs to a person ("Ask a human").
    """
    ALTER TABLE journal_answers ADD COLUMN platform text;
    ALTER TABLE journal_answers ADD COLUMN conversation_id text;
    CREATE INDEX journal_answers_asked ON journal_answers (asked_at);
    CREATE INDEX journal_answers_conversation ON journal_answers (platform, conversation_id, asked_at);
    CREATE TABLE journal_escalations (
        id bigserial PRIMARY KEY,
        answer_id text NOT NULL REFERENCES journal_answers (id),
        requested_by text,
        platform text,
        posted_to text,
        requested_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX journal_escalations_answer ON journal_escalations (answer_id);
    CREATE INDEX journal_escalations_requested ON journal_escalations (requested_at);
    """,
    # 4: answers learnt from people, and the turns of each Discord answer thread, shared by every replica.
    """
    CREATE TABLE learnt_answers (
        id text PRIMARY KEY,
        entry jsonb NOT NULL,
        saved_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE discord_threads (
        thread_id text PRIMARY KEY,
        turns jsonb NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX discord_threads_expiry ON discord_threads (expires_at);
    """,
    # 5: Discord's offers waiting for a click ("Post publicly", "Save as an answer"), for whichever replica
    # gets the click.
    """
    CREATE TABLE discord_offers (
        key text PRIMARY KEY,
        offer jsonb NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX discord_offers_expiry ON discord_offers (expires_at);
    """,
    # 6: chat events acknowledged and not answered yet, which a replica takes over when the one answering dies.
    """
    CREATE TABLE pending_events (
        key text PRIMARY KEY,
        platform text NOT NULL,
        payload jsonb NOT NULL,
        lease_until timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 1,
        reply_id text,
        finished_at timestamptz,
        outcome text
    );
    CREATE INDEX pending_events_due ON pending_events (platform, lease_until) WHERE finished_at IS NULL;
    CREATE INDEX pending_events_finished ON pending_events (finished_at);
    """,
    # 7: whether an index version has its keyword postings (index_postings_<version id>, written by the sync
    # with the version); versions written before have none and are searched by scanning their passages.
    """
    ALTER TABLE index_versions ADD COLUMN postings boolean NOT NULL DEFAULT false;
    """,
)
# Held (per transaction) by whoever migrates, so replicas starting together migrate once.
MIGRATION_LOCK = 7_301_115_001
# Connections each process keeps at most (HELPDESK_DATABASE_POOL_SIZE). PostgreSQL accepts 100 by default:
# 5 leaves room for about 20 replicas, and a sync writing a version (one connection for its transaction)
# leaves 4 for answers, votes and events, which hold one for a few milliseconds each.
POOL_SIZE = 5
# How long a call waits for a free connection (all in use, or the server unreachable) before it fails: an
# answer waits for its journal entry, so a database that is down must not hold it up for long.
CONNECTION_WAIT_S = 5.0


class Database:
    """The PostgreSQL database of HELPDESK_DATABASE_URL; its schema is brought up to date on first use.

    Calls share a small pool of connections, opened on first use in the running event loop; `close()`
    closes them, and so does the loop's end (asyncio.run cancelling what is left), which would otherwise wait
    forever for the pool's workers. One Database per process (bot.runtime.open_database) keeps the bot
    within `pool_size`.
    """

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        self._url = url
        self.pool_size = pool_size
        self._migrated = False
        self._pool: AsyncConnectionPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._closer: asyncio.Task | None = None

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """An autocommit connection of the pool, to the migrated schema, with pgvector's types registered."""
        pool = await self._open_pool()
        try:
            async with pool.connection() as connection:
                yield connection
        except PoolTimeout as error:
            msg = (
                f"No connection to the PostgreSQL database of HELPDESK_DATABASE_URL within {CONNECTION_WAIT_S:.0f} s "
                f"({error}): check that the server is up, or raise HELPDESK_DATABASE_POOL_SIZE "
                f"(now {self.pool_size}) if every connection is busy"
            )
            raise DatabaseUnavailable(msg) from None

    @contextlib.asynccontextmanager
    async def using(self, what: str, error: type[Exception]) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection whose every database failure is raised as `error`, naming `what` could not
        be used (the failure chained)."""
        try:
            async with self.connect() as connection:
                yield connection
        except (psycopg.Error, DatabaseUnavailable) as failure:
            msg = (
                f"Could not use {what} in PostgreSQL ({failure}): check HELPDESK_DATABASE_URL and the server"
            )
            raise error(msg) from failure

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection of its own (not pooled), closed at the end, so session state such as an advisory
        lock dies with it: for work that holds a lock for long."""
        try:
            opened = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        except psycopg.OperationalError as error:
            raise _unavailable(error) from None
        async with opened as connection:
            if not self._migrated:
                await migrate(connection)
                self._migrated = True
            yield connection

    async def _open_pool(self) -> AsyncConnectionPool:
        """The pool of the running event loop, opened (after migrating the schema) on first use."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            if not self._migrated:
                async with self.session():  # says plainly why the server cannot be used, before any pooling
                    pass
            pool = AsyncConnectionPool(
                self._url,
                min_size=1,
                max_size=self.pool_size,
                kwargs={"autocommit": True},
                configure=register_vector_async,
                check=AsyncConnectionPool.check_connection,  # a connection a server restart broke is replaced
                timeout=CONNECTION_WAIT_S,
                open=False,
                name="helpdesk",
            )
            await pool.open()
            if self._pool is not None and self._pool_loop is loop:  # another call opened one meanwhile
                await pool.close()
            else:
                self._pool, self._pool_loop = pool, loop
                self._closer = asyncio.create_task(_close_when_cancelled(pool), name="helpdesk-pool-closer")
        return self._pool

    async def close(self) -> None:
        """Close the pool's connections (a later call opens a new pool)."""
        closer, self._pool, self._closer = self._closer, None, None
        if closer is not None and self._pool_loop is asyncio.get_running_loop():
            closer.cancel()  # it closes the pool
            with contextlib.suppress(asyncio.CancelledError):
                await closer


async def _close_when_cancelled(pool: AsyncConnectionPool) -> None:
    """Wait until cancelled (by asyncio.run ending, say), then close the pool. Its workers swallow a
    cancellation while they run a task, so without this the loop would wait for them forever."""
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await pool.close()


def _unavailable(error: psycopg.OperationalError) -> DatabaseUnavailable:
    msg = (
        f"Cannot connect to the PostgreSQL database of HELPDESK_DATABASE_URL ({error}); "
        "check the URL and that the server is up"
    )
    return DatabaseUnavailable(msg)


async def migrate(connection: psycopg.AsyncConnection) -> int:
    """Enable pgvector and bring the schema to the newest migration; the schema version reached."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await _enable_pgvector(connection)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await connection.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        (applied,) = await cursor.fetchone()
        for number, statements in enumerate(MIGRATIONS[applied:], start=applied + 1):
            await connection.execute(statements)
            await connection.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
    return len(MIGRATIONS)


async def _enable_pgvector(connection: psycopg.AsyncConnection) -> None:
    cursor = await connection.execute(
        "SELECT installed_version FROM pg_available_extensions WHERE name = 'vector'"
    )
    row = await cursor.fetchone()
    if row is None:
        msg = (
            "The PostgreSQL server of HELPDESK_DATABASE_URL has no pgvector extension. Install it on the "
            "server (e.g. `apt install postgresql-16-pgvector`, or use the pgvector/pgvector Docker image), "
            "or unset HELPDESK_DATABASE_URL to keep the index in the data directory"
        )
        raise PgvectorMissing(msg)
    if row[0] is not None:
        return
    try:
        async with connection.transaction():
            await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege:
        msg = (
            "pgvector is installed on the PostgreSQL server but not enabled in this database, and the user "
            "of HELPDESK_DATABASE_URL may not enable it: ask a superuser to run `CREATE EXTENSION vector;` in it"
        )
        raise PgvectorMissing(msg) from None
