"""The bot's PostgreSQL database: connections, numbered migrations applied on start, the pgvector check."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import psycopg
from pgvector.psycopg import register_vector_async

from knowledge.backend import DatabaseUnavailable, PgvectorMissing

# Each migration runs once, in order, in its own transaction; a released bot never edits one, it adds the
# next. The tables of one index version's passages are created by the sync (their vector size is the
# embedding model's), named index_passages_<version id>.
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
)
# Held (per transaction) by whoever migrates, so replicas starting together migrate once.
MIGRATION_LOCK = 7_301_115_001


class Database:
    """The PostgreSQL database of HELPDESK_DATABASE_URL; its schema is brought up to date on first use."""

    def __init__(self, url: str):
        self._url = url
        self._migrated = False

    @contextlib.asynccontextmanager
    async def connect(self, vectors: bool = False) -> AsyncIterator[psycopg.AsyncConnection]:
        """An autocommit connection to the migrated schema; with `vectors`, pgvector's types registered."""
        try:
            opened = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        except psycopg.OperationalError as error:
            raise _unavailable(error) from None
        async with opened as connection:
            if not self._migrated:
                await migrate(connection)
                self._migrated = True
            if vectors:
                await register_vector_async(connection)
            yield connection

    @contextlib.contextmanager
    def connect_blocking(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection for blocking callers (run them off the event loop); no migration runs."""
        try:
            opened = psycopg.connect(self._url, autocommit=True)
        except psycopg.OperationalError as error:
            raise _unavailable(error) from None
        with opened as connection:
            yield connection


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
