"""Keyword search of the PostgreSQL backend by BM25 impacts, against a real PostgreSQL 16 (pgserver)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from conftest import CountingEmbeddings, write
from test_postgres_backend import QUESTIONS, _kb, _sample, _tables

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


async def test_a_version_written_without_postings_is_searched_by_its_full_text_index(tmp_path, database_url):
    database = _kb(tmp_path / "pg", database_url)
    await database.sync(_sample())
    before = {question: await database.search(question, k=5) for question in QUESTIONS}
    version = await database.current()
    async with version.backend.connect() as connection:  # as a version synced before postings existed
        await connection.execute(psycopg.sql.SQL("DROP TABLE {}").format(_postings(version.version_id)))
        await connection.execute("UPDATE index_versions SET postings = false")
    replica = _kb(tmp_path / "replica", database_url)
    assert {question: await replica.search(question, k=5) for question in QUESTIONS} == before
    assert (await replica.current()).postings is False
