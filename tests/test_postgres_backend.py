"""The PostgreSQL index backend against a real PostgreSQL 16 with pgvector, started here (pgserver)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_KB, CountingEmbeddings, outside_pytest_tmp, write

from knowledge.backend import DatabaseUnavailable, NewVersion, PgvectorMissing
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.sources import FileSource, SourceOptions
from knowledge.store import SyncInProgress
from knowledge.sync_log import KEEP_AT_LEAST, KEEP_DAYS, SyncLog, sync_entry

pgserver = pytest.importorskip("pgserver")
psycopg = pytest.importorskip("psycopg")
from knowledge.database import MIGRATIONS, migrate  # noqa: E402
from knowledge.postgres import PostgresBackend  # noqa: E402

QUESTIONS = [
    "How do I reset my password?",
    "refund policy",
    "SSO login",
    "invoice billing plan",
    "can I export my data to CSV",
    "password password reset",
    "zzz nothing matches this",
]


def _kb(data_dir: Path, database_url: str | None, embeddings=None) -> KnowledgeBase:
    backend = PostgresBackend(database_url) if database_url else None
    return KnowledgeBase(
        data_dir, embeddings or CountingEmbeddings(size=32), Chunker(400, 50), "fake", backend
    )


def _sample() -> list[FileSource]:
    return [FileSource(SAMPLE_KB, SourceOptions())]


async def _tables(database_url: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'index_passages_%' ORDER BY tablename"
        )
        return [name for (name,) in await cursor.fetchall()]


def _ranking(hits) -> list[tuple[str, list[str], str | None]]:
    """Each hit's passage, the passages handed on with it and the one it announces."""
    return [
        (h.chunk.chunk_id, [m.chunk_id for m in h.more], h.announced.chunk_id if h.announced else None)
        for h in hits
    ]


async def test_postgres_ranks_like_the_files_backend(tmp_path, database_url):
    files, database = _kb(tmp_path / "files", None), _kb(tmp_path / "pg", database_url)
    assert (await files.sync(_sample())).chunks_total == (await database.sync(_sample())).chunks_total
    for question, mode in itertools.product(QUESTIONS, ("hybrid", "dense", "bm25")):
        expected = await files.retrieve(question, k=5, mode=mode)
        found = await database.retrieve(question, k=5, mode=mode)
        assert [h.score for h in found.hits] == pytest.approx([h.score for h in expected.hits], abs=1e-4)
        assert _ranking(found.hits) == _ranking(expected.hits), (question, mode)  # equal scores too
        assert found.confidence == pytest.approx(expected.confidence, abs=1e-3), (question, mode)
        assert found.coverage == pytest.approx(expected.coverage, abs=1e-3), (question, mode)


async def test_schema_is_migrated_once_and_a_second_sync_changes_only_what_changed(tmp_path, database_url):
    kb_dir = tmp_path / "kb"
    write(kb_dir / "a.md", "# Apples\n\nApples are red and grow on trees.")
    write(kb_dir / "b.md", "# Bananas\n\nBananas are yellow.")
    embeddings = CountingEmbeddings(size=32)
    kb = _kb(tmp_path / "data", database_url, embeddings)
    first = await kb.sync([FileSource(kb_dir, SourceOptions())])
    write(kb_dir / "b.md", "# Bananas\n\nBananas are yellow and curved.")
    embedded = embeddings.embedded
    second = await _kb(tmp_path / "data", database_url, embeddings).sync(
        [FileSource(kb_dir, SourceOptions())]
    )
    assert (first.version, second.version) == ("v000001", "v000002")
    assert (len(second.updated), second.unchanged) == (1, 1)
    assert embeddings.embedded - embedded < first.chunks_embedded  # the unchanged document was carried over
    assert (await kb.search("curved bananas"))[0].chunk.doc_id == "b"
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        assert await migrate(connection) == len(MIGRATIONS)
        cursor = await connection.execute("SELECT version FROM schema_migrations")
        assert await cursor.fetchall() == [(number,) for number in range(1, len(MIGRATIONS) + 1)]


async def test_readers_keep_their_version_until_the_new_one_is_published(tmp_path, database_url):
    writer, replica = _kb(tmp_path / "w", database_url), _kb(tmp_path / "r", database_url)
    await writer.sync(_sample())
    before = await replica.search("refund policy", k=3)
    backend = writer.backend
    served = (await backend.load_newest_sound(writer.embeddings)).version
    gone = before[0].chunk.doc_key
    manifest = {**served.manifest, "counts": {"documents": 0}}
    written = await backend.write(NewVersion(served, {gone}, [], [], manifest, 32, writer.embeddings))
    assert written.name == "v000002" and await backend.published() == "v000001"
    assert await replica.search("refund policy", k=3) == before  # written, not yet published
    old = await replica.current()
    assert await backend.publish(written, {}) == "v000002"
    after = await replica.search("refund policy", k=3)
    assert replica.served == "v000002" and gone not in {hit.chunk.doc_key for hit in after}
    vector = await replica.embed_query("refund policy")
    assert (
        old.rank(await old.aquery(vector, "refund policy", k=3, mode="hybrid"), k=3, mode="hybrid") == before
    )


async def test_a_sync_that_fails_leaves_nothing_visible(tmp_path, database_url):
    class FailingEmbeddings(CountingEmbeddings):
        def embed_documents(self, texts):
            if self.embedded > 40:
                raise RuntimeError("embedding model crashed")
            return super().embed_documents(texts)

    kb_dir = tmp_path / "kb"
    write(kb_dir / "a.md", "# Apples\n\nApples are red.")
    kb = _kb(tmp_path / "data", database_url)
    await kb.sync([FileSource(kb_dir, SourceOptions())])
    broken = _kb(tmp_path / "data", database_url, FailingEmbeddings(size=32))
    with pytest.raises(RuntimeError, match="crashed"):
        await broken.sync(_sample())
    assert await kb.backend.published() == "v000001"
    assert await _tables(database_url) == ["index_passages_1"]
    assert {hit.chunk.doc_id for hit in await kb.search("refund policy")} == {"a"}


KILLED_SYNC = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from conftest import CountingEmbeddings
    from knowledge.base import KnowledgeBase
    from knowledge.chunking import Chunker
    from knowledge.postgres import PostgresBackend
    from knowledge.sources import FileSource, SourceOptions

    def progress(stage, done, total):
        print(stage, flush=True)

    backend = PostgresBackend(sys.argv[1])
    kb = KnowledgeBase(Path("data"), CountingEmbeddings(size=32), Chunker(400, 50), "fake", backend)
    asyncio.run(kb.sync([FileSource(Path(sys.argv[2]), SourceOptions())], progress=progress))
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
async def test_a_sync_killed_while_writing_leaves_nothing_half_visible(tmp_path, database_url, delay):
    kb = _kb(tmp_path / "data", database_url)
    write(tmp_path / "old" / "a.md", "# Apples\n\nApples are red.")
    await kb.sync([FileSource(tmp_path / "old", SourceOptions())])
    big = tmp_path / "big"
    for n in range(300):
        write(big / f"doc{n}.md", f"# Document {n}\n\n" + f"Paragraph {n} about refunds and billing. " * 40)
    script = tmp_path / "sync.py"
    script.write_text(KILLED_SYNC)
    command = [sys.executable, str(script), database_url, str(big), str(REPO / "tests")]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    while (line := await process.stdout.readline()) and line.strip() != b"write":
        pass
    await asyncio.sleep(delay)
    process.kill()
    await process.wait()
    published = await kb.backend.published()
    hits = await kb.search("refunds and billing", k=50)
    documents = {hit.chunk.doc_id for hit in hits}
    if published == "v000001":  # killed before the switch: the old version, whole
        assert documents == {"a"}
    else:  # killed after it: the new version, whole
        assert published == "v000002" and len(documents) == 50
    await kb.sync([FileSource(tmp_path / "old", SourceOptions())])  # the next sync clears what was left
    assert len(await _tables(database_url)) <= 2


async def test_one_sync_at_a_time_across_replicas(tmp_path, database_url):
    first, second = _kb(tmp_path / "one", database_url), _kb(tmp_path / "two", database_url)
    async with second.backend.locked():
        with pytest.raises(SyncInProgress, match="Another sync is running on the PostgreSQL database"):
            await first.sync(_sample())
    results = await asyncio.gather(first.sync(_sample()), second.sync(_sample()), return_exceptions=True)
    assert sorted(type(result).__name__ for result in results) == ["SyncInProgress", "SyncReport"]
    assert await first.backend.published() == "v000001"


def test_a_server_without_pgvector_is_named_with_what_to_do(monkeypatch):
    import pgserver._commands
    import pgserver.postgres_server

    install = Path(pgserver._commands.POSTGRES_BIN_PATH).parent  # …/pgserver/pginstall
    with outside_pytest_tmp("helpdesk-bare-pg-") as site:
        bare = site / "pgserver" / "pginstall"  # the same PostgreSQL, without pgvector's files
        shutil.copytree(install, bare, ignore=shutil.ignore_patterns("vector*"))
        shutil.copytree(install.parent.parent / "pgserver.libs", site / "pgserver.libs")
        monkeypatch.setattr(pgserver._commands, "POSTGRES_BIN_PATH", bare / "bin")
        monkeypatch.setattr(pgserver.postgres_server, "POSTGRES_BIN_PATH", bare / "bin")
        server = pgserver.get_server(site / "data", cleanup_mode="stop")
        try:
            assert "vector" not in server.psql("SELECT name FROM pg_available_extensions;")
            backend = PostgresBackend(server.get_uri())
            with pytest.raises(PgvectorMissing, match=r"no pgvector extension\. Install it") as raised:
                asyncio.run(backend.check_writable())
            assert "HELPDESK_DATABASE_URL" in str(raised.value)
        finally:
            server.cleanup()


def test_status_reports_the_version_the_database_serves(tmp_path, database_url):
    from typer.testing import CliRunner

    from connectors.cli import app

    def status() -> tuple[int, dict]:
        env = {"HELPDESK_DATABASE_URL": database_url, "HELPDESK_DATA_DIR": str(tmp_path / "unused")}
        result = CliRunner().invoke(app, ["status", "--json"], env=env)
        return result.exit_code, json.loads(result.stdout)

    code, empty = status()
    assert (code, empty["state"], empty["served"]) == (1, "empty", None)
    report = asyncio.run(_kb(tmp_path / "data", database_url).sync(_sample()))
    code, served = status()
    assert (code, served["state"], served["served"]) == (0, "ok", "v000001")
    assert served["documents"] == report.documents_total and served["passages"] > 0
    assert served["last_syncs"][0]["outcome"] == "ok" and served["last_syncs"][0]["version"] == "v000001"
    assert served["learnt_answers"] == {
        "kept_in": "the PostgreSQL database of HELPDESK_DATABASE_URL",
        "entries": [],
    }
    assert not (tmp_path / "unused").exists()


def test_the_database_url_setting_selects_the_postgresql_backend(tmp_path, database_url):
    from bot.runtime import index_backend
    from bot.settings import Settings
    from knowledge.backend import FilesBackend

    assert isinstance(index_backend(Settings(data_dir=tmp_path)), FilesBackend)
    backend = index_backend(Settings(data_dir=tmp_path, database_url=database_url))
    assert isinstance(backend, PostgresBackend)
    asyncio.run(backend.check_writable())  # connects and migrates
    unreachable = index_backend(Settings(database_url="postgresql://nobody@/none?host=/nonexistent"))
    with pytest.raises(
        DatabaseUnavailable, match="Cannot connect to the PostgreSQL database of HELPDESK_DATABASE_URL"
    ):
        asyncio.run(unreachable.check_writable())


async def test_the_database_keeps_the_same_record_of_syncs_as_the_data_directory(tmp_path, database_url):
    files, database = _kb(tmp_path / "files", None), _kb(tmp_path / "data", database_url)
    await files.sync(_sample())
    await database.sync(_sample())

    [file_entry] = await files.sync_log.entries()
    since = datetime.now(UTC) - timedelta(days=30)
    [entry] = await database.sync_log.entries(since)  # what the report reads
    assert entry.keys() == file_entry.keys() and entry["added_documents"] == file_entry["added_documents"]
    assert entry["outcome"] == "ok" and entry["version"] == "v000001"
    assert (await database.backend.health())["last_syncs"] == [entry]  # what `helpdesk status` reads
    assert database.sync_log is database.backend.sync_log and not (tmp_path / "data" / "syncs.jsonl").exists()
    assert await database.sync_log.entries(datetime.now(UTC) + timedelta(days=1)) == []


async def test_the_database_drops_old_syncs_like_the_data_directory(tmp_path, database_url):
    files, database = SyncLog(tmp_path / "syncs.jsonl"), PostgresBackend(database_url).sync_log
    assert await database.entries() == await database.recent() == []  # a new database: no syncs
    now = datetime(2026, 12, 6, tzinfo=UTC)
    moments = [now - timedelta(days=KEEP_DAYS + 40 - day) for day in range(KEEP_AT_LEAST + 5)]
    for started in [*moments, now - timedelta(days=KEEP_DAYS - 1), now]:
        entry = sync_entry(started)
        await files.record(entry)
        await database.record(entry)
    assert await database.entries() == await files.entries() and len(await files.entries()) == KEEP_AT_LEAST
    assert await database.recent(3) == await files.recent(3)
    await database.database.close()


async def test_the_index_is_built_with_the_build_memory_in_its_transaction_only(tmp_path, database_url):
    from bot.runtime import close_database, index_backend, open_database
    from bot.settings import Settings

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        # The memory each CREATE INDEX ran with, recorded by the server as it runs.
        await connection.execute("CREATE TABLE index_builds (index text, memory text)")
        await connection.execute(
            "CREATE FUNCTION note_build() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN"
            " INSERT INTO index_builds SELECT object_identity, current_setting('maintenance_work_mem')"
            " FROM pg_event_trigger_ddl_commands(); END $$"
        )
        await connection.execute(
            "CREATE EVENT TRIGGER note_build ON ddl_command_end WHEN TAG IN ('CREATE INDEX')"
            " EXECUTE FUNCTION note_build()"
        )
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, database_build_memory="96mb")
    kb = KnowledgeBase(
        settings.data_dir, CountingEmbeddings(size=32), Chunker(400, 50), "fake", index_backend(settings)
    )
    try:
        await kb.sync(_sample())
        async with open_database(settings).connect() as connection:
            cursor = await connection.execute("SELECT index, memory FROM index_builds")
            builds = await cursor.fetchall()
            cursor = await connection.execute("SHOW maintenance_work_mem")
            after = (await cursor.fetchone())[0]
    finally:
        await close_database(settings)
    version_builds = [(index, memory) for index, memory in builds if "index_passages_" in index]
    assert any("embedding" in index for index, _ in version_builds) and len(version_builds) == 2
    assert {memory for _, memory in version_builds} == {"96MB"}
    assert after == "64MB"  # the server's default again, on the same pooled connections


async def test_keyword_search_scores_each_matching_row_once(tmp_path, database_url):
    """A version without postings is scanned: each row holding a query term is scored by one BM25 subquery,
    not one more for `score > 0` (at 100k passages that scan took 0.6 s, half of it scoring every row again)."""
    from knowledge.postgres import _table

    database = _kb(tmp_path / "pg", database_url)
    await database.sync(_sample())
    version = await database.current()
    weights = {"password": 1.0, "reset": 2.0}
    parameters = {"terms": list(weights), "weights": list(weights.values()), "fetch": 10}
    async with version.backend.connect() as connection:
        explain = psycopg.sql.SQL("EXPLAIN ") + version.keyword_scan_sql(_table(version.version_id))
        cursor = await connection.execute(explain, parameters)
        plan = "\n".join(line for (line,) in await cursor.fetchall())
        found = await version._keyword_scan(connection, _table(version.version_id), weights, 10)
    assert plan.count("SubPlan") == 1, plan
    assert found and all(score > 0 for _, score in found)
