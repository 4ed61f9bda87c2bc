"""The bot's PostgreSQL schema: numbered migrations applied on start, and the pgvector check before them."""

from __future__ import annotations

import psycopg

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
)
# Held (per transaction) by whoever migrates, so replicas starting together migrate once.
MIGRATION_LOCK = 7_301_115_001


class PgvectorMissing(RuntimeError):
    """The PostgreSQL server has no pgvector extension, or it may not be enabled by this user."""


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
