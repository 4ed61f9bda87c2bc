"""Keyword search of the PostgreSQL backend by BM25 impacts, against a real PostgreSQL 16 (pgserver)."""

from __future__ import annotations

import itertools
import shutil
from collections import Counter

import pytest
from conftest import SAMPLE_KB, CountingEmbeddings, write
from test_postgres_backend import QUESTIONS, _kb, _ranking, _sample, _tables

from knowledge.backend import NewVersion
from knowledge.documents import Chunk
from knowledge.index import tokenize
from knowledge.sources import FileSource, SourceOptions

psycopg = pytest.importorskip("psycopg")
from knowledge import postgres  # noqa: E402
from knowledge.postgres import MAX_POSTINGS_READ, _postings, _table  # noqa: E402

DIMENSION = 8


async def _terms(version, connection, question: str) -> tuple[Counter, dict[str, float]]:
    query = Counter(tokenize([question])[0])
    return query, version._weights(query, await version._entries(connection, list(query)))


async def test_impacts_give_the_rows_and_scores_of_scoring_every_matching_row(tmp_path, database_url):
    database = _kb(tmp_path / "pg", database_url)
    await database.sync(_sample())
    version = await database.current()
    table = _table(version.version_id)
    questions = [*QUESTIONS, "account", "how do I cancel my plan and get a refund", "the a to of and"]
    async with version.backend.connect() as connection:
        cursor = await connection.execute(
            psycopg.sql.SQL("SELECT max(n) FROM (SELECT count(*) AS n FROM {} GROUP BY term) t").format(
                _postings(version.version_id)
            )
        )
        assert (await cursor.fetchone())[0] < MAX_POSTINGS_READ  # the bound is never reached here
        compared = 0
        for question, fetch in itertools.product(questions, (1, 3, 10, 100)):
            query, weights = await _terms(version, connection, question)
            scanned = await version._keyword_scan(connection, table, weights, fetch)
            found = await version._keyword_top(connection, table, query, weights, fetch)
            assert [row for row, _ in found] == [row for row, _ in scanned], (question, fetch)
            assert [score for _, score in found] == pytest.approx([s for _, s in scanned], rel=1e-9)
            compared += bool(scanned)
    assert compared >= 30


async def _write_common_word_version(backend, rows: int) -> None:
    """A version of `rows` one-passage documents that all say the same word, so no row stands out."""
    chunks = [Chunk(f"d{n}#0", f"d{n}", f"d{n}", "Guide", "common", "test") for n in range(rows)]
    vectors = [[1.0] + [0.0] * (DIMENSION - 1)] * rows
    manifest = {"counts": {"documents": rows}, "documents": {}}
    embeddings = CountingEmbeddings(size=DIMENSION)
    new = NewVersion(None, set(), chunks, vectors, manifest, DIMENSION, embeddings)
    await backend.publish(await backend.write(new), {})


async def _postings_read(connection, version_id: int) -> int:
    """Postings the index of a version's postings table has handed out so far."""
    await connection.execute("SELECT pg_stat_force_next_flush()")
    cursor = await connection.execute(
        "SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes WHERE relname = %s",
        (f"index_postings_{version_id}",),
    )
    return (await cursor.fetchone())[0]


async def test_a_word_every_row_holds_reads_no_more_than_the_bound_of_postings(tmp_path, database_url):
    rows, depth = 3000, 1000
    backend = postgres.PostgresBackend(database_url)
    await _write_common_word_version(backend, rows)
    version = (await backend.load_newest_sound(CountingEmbeddings(size=DIMENSION))).version
    table = _table(version.version_id)
    async with backend.connect() as connection:
        query, weights = await _terms(version, connection, "common")
        before = await _postings_read(connection, version.version_id)
        found = await version._keyword_impacts(connection, query, weights, 100, depth)
        read = await _postings_read(connection, version.version_id) - before
        scanned = await version._keyword_scan(connection, table, weights, rows)
    assert len(scanned) == rows  # the full-text search scores every row
    assert 0 < read <= depth + 1
    assert [score for _, score in found] == pytest.approx([scanned[0][1]] * 100)  # the rows are alike


async def test_postings_of_dropped_versions_are_dropped_with_them(tmp_path, database_url):
    kb = _kb(tmp_path / "data", database_url)
    for number in range(4):
        write(tmp_path / "kb" / "a.md", f"# Apples\n\nApples grow on trees, {number} of them.")
        await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'index_postings_%' ORDER BY tablename"
        )
        postings = [name for (name,) in await cursor.fetchall()]
    kept = [name.removeprefix("index_passages_") for name in await _tables(database_url)]
    assert len(kept) == postgres.KEEP_VERSIONS
    assert postings == [f"index_postings_{version_id}" for version_id in kept]


async def _columns_and_indexes(connection, version_id: int) -> tuple[set[str], list[str]]:
    """The columns of a version's passage table, and the definitions of its indexes."""
    table = f"index_passages_{version_id}"
    cursor = await connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
    )
    columns = {name for (name,) in await cursor.fetchall()}
    cursor = await connection.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,))
    return columns, [definition for (definition,) in await cursor.fetchall()]


async def _as_written_before_postings(connection, version_id: int) -> None:
    """Turn a version into one a sync wrote before postings existed: a full-text column of its words with its
    GIN index, and no postings."""
    table = _table(version_id)
    for statement in (
        "ALTER TABLE {} ADD COLUMN keywords tsvector",
        "UPDATE {} SET keywords = array_to_tsvector(terms)",
        "ALTER TABLE {} ALTER COLUMN keywords SET NOT NULL",
        "CREATE INDEX ON {} USING gin (keywords)",
    ):
        await connection.execute(psycopg.sql.SQL(statement).format(table))
    await connection.execute(psycopg.sql.SQL("DROP TABLE {}").format(_postings(version_id)))
    await connection.execute("UPDATE index_versions SET postings = false WHERE id = %s", (version_id,))


async def test_new_versions_have_no_full_text_column_nor_index(tmp_path, database_url):
    kb_dir = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb_dir)
    await _kb(tmp_path / "pg", database_url).sync([FileSource(kb_dir, SourceOptions())])
    write(kb_dir / "faq" / "new.md", "# Gift cards\n\nGift cards never expire.")
    await _kb(tmp_path / "pg", database_url).sync([FileSource(kb_dir, SourceOptions())])  # incremental
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        for version_id in (1, 2):
            columns, indexes = await _columns_and_indexes(connection, version_id)
            assert {"terms", "counts", "length"} <= columns and "keywords" not in columns
            assert len(indexes) == 3 and not any("gin" in definition for definition in indexes), indexes


async def test_a_version_written_before_postings_is_searched_and_synced_on(tmp_path, database_url):
    kb_dir = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb_dir)
    sources = [FileSource(kb_dir, SourceOptions())]
    files, writer = _kb(tmp_path / "files", None), _kb(tmp_path / "pg", database_url)
    replica = _kb(tmp_path / "replica", database_url)
    await files.sync(sources)
    await writer.sync(sources)
    before = {question: await writer.search(question, k=5) for question in QUESTIONS}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await _as_written_before_postings(connection, 1)
        assert "keywords" in (await _columns_and_indexes(connection, 1))[0]
    try:
        assert {question: await replica.search(question, k=5) for question in QUESTIONS} == before
        assert (await replica.current()).postings is False

        write(kb_dir / "faq" / "new.md", "# Gift cards\n\nGift cards never expire; a refund is not possible.")
        (kb_dir / "billing" / "changing-your-plan.md").unlink()
        await files.sync(sources)
        report = await writer.sync(sources)
        assert report.version == "v000002" and report.unchanged > 0  # rows copied from the old table
        assert (await replica.current()).postings is True
        for question, mode in itertools.product([*QUESTIONS, "gift card refund"], ("hybrid", "bm25")):
            expected = await files.retrieve(question, k=5, mode=mode)
            found = await replica.retrieve(question, k=5, mode=mode)
            assert _ranking(found.hits) == _ranking(expected.hits), (question, mode)
            assert [h.score for h in found.hits] == pytest.approx([h.score for h in expected.hits], abs=1e-4)
    finally:
        for kb in (writer, replica):
            await kb.backend.database.close()
