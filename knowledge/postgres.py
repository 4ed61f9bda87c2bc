"""Index versions in PostgreSQL: passages and vectors in tables (pgvector HNSW), keywords by BM25 impacts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

import bm25s
import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings
from psycopg import sql
from psycopg.types.json import Jsonb

from knowledge.backend import DatabaseUnavailable, NewVersion, WrittenVersion
from knowledge.database import Database
from knowledge.documents import DOCUMENT_KIND, Chunk
from knowledge.index import QueryScores, RankedIndex, tokenize
from knowledge.store import SyncInProgress
from knowledge.sync_log import KEEP_AT_LEAST, KEEP_DAYS, entry_started
from knowledge.versions import SoundVersion

log = logging.getLogger(__name__)
# The key of the advisory lock one sync holds across every replica sharing the database.
SYNC_LOCK = 7_301_115_002
# BM25 as the files backend scores it: bm25s's defaults (Lucene variant).
_BM25 = bm25s.BM25()
K1, B = _BM25.k1, _BM25.b
# Candidates the HNSW graph search keeps (pgvector's hnsw.ef_search, 40 by default): at least the rows
# asked for, since it never returns more than this many. Not tuned yet; pgvector allows up to 1000.
MIN_EF_SEARCH = 200
MAX_EF_SEARCH = 1000
# Memory the HNSW build of a sync may use unless HELPDESK_DATABASE_BUILD_MEMORY says (maintenance_work_mem, only
# in the transaction that builds it): PostgreSQL's default, 64 MB, holds the graph of about 28k passages, and
# a larger one goes on on disk, far slower (1M passages: 429k after 20 minutes); 1 GB holds about 450k
# (a million take ~2 GB, docs/benchmarks.md) and suits a database server of 4 GB or more.
BUILD_MEMORY = "1GB"
# Postings read per query term at most, best impact first: a term with more loses the part of a row's score
# that is below its last impact read. Measured on the 100k-entry synthetic index (bench/pg_keyword_impacts.py,
# 199 five-word queries, fetch 100, lists of up to 36k postings): recall@100 against the exact top was 0.68
# reading 1,600 per term, 0.90 at 6,400, 0.96 at 12,800, 0.995 at 25,600 and 1 from 50,000 on, while the p50
# only went from 2.9 to 10.5 ms (the full scan: 240 ms). So the bound reads such an index's lists whole, and
# caps what one query reads on larger ones.
MAX_POSTINGS_READ = 50_000
# Versions kept: the one served and the one before it, which replicas that have not reloaded still search.
KEEP_VERSIONS = 2


def version_name(version_id: int) -> str:
    """A version's name, numbered like the data directory's folders."""
    return f"v{version_id:06d}"


def _table(version_id: int) -> sql.Identifier:
    return sql.Identifier(f"index_passages_{version_id}")


def _postings(version_id: int) -> sql.Identifier:
    return sql.Identifier(f"index_postings_{version_id}")


def _saturation(tf: str, length: str, mean_length: float) -> sql.Composable:
    """SQL of BM25's term-frequency part (Lucene's, without IDF) for SQL expressions of a count and a length."""
    return sql.SQL("{tf} / ({tf} + {k1} * (1 - {b} + {b} * {length} / {mean}))").format(
        tf=sql.SQL(tf),
        length=sql.SQL(length),
        k1=sql.Literal(K1),
        b=sql.Literal(B),
        mean=sql.Literal(mean_length or 1.0),
    )


def _half_precision(vectors: Iterable[list[float]]) -> Iterable[np.ndarray]:
    """Vectors rounded to float16 as the files backend stores them, so both rank alike."""
    for vector in vectors:
        yield np.asarray(vector, dtype=np.float16).astype(np.float32)


class PostgresBackend:
    """Index versions in a PostgreSQL database with pgvector; many replicas can share it.

    A sync writes a whole version in one transaction, then publishes it by switching `served_version` in
    another; one sync at a time runs, under an advisory lock.
    """

    where = "the PostgreSQL database of HELPDESK_DATABASE_URL"

    def __init__(self, database: Database | str, build_memory: str | None = None):
        self.database = database if isinstance(database, Database) else Database(database)
        self.build_memory = build_memory or BUILD_MEMORY
        self.sync_log = PostgresSyncLog(self.database)

    def connect(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        """A pooled connection to the migrated database, with pgvector's types registered."""
        return self.database.connect()

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        async with (
            self.database.session() as connection
        ):  # the lock ends with the connection, whatever happens
            cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (SYNC_LOCK,))
            (acquired,) = await cursor.fetchone()
            if not acquired:
                msg = "Another sync is running on the PostgreSQL database; wait for it to finish"
                raise SyncInProgress(msg)
            try:
                yield
            finally:
                await connection.execute("SELECT pg_advisory_unlock(%s)", (SYNC_LOCK,))

    async def check_writable(self) -> None:
        async with self.connect():
            pass

    async def published(self) -> str | None:
        async with self.connect() as connection:
            cursor = await connection.execute("SELECT version_id FROM served_version")
            row = await cursor.fetchone()
        return version_name(row[0]) if row else None

    async def has_versions(self) -> bool:
        return await self.published() is not None

    async def load_newest_sound(
        self, embeddings: Embeddings, known_damaged: dict | None = None
    ) -> SoundVersion:
        """The served version, its passages read into memory; the database keeps versions whole."""
        async with self.connect() as connection:
            cursor = await connection.execute(
                "SELECT v.id, v.manifest, v.mean_length, v.postings FROM served_version s"
                " JOIN index_versions v ON v.id = s.version_id"
            )
            row = await cursor.fetchone()
            if row is None:
                return SoundVersion(None, None, {})
            version_id, manifest, mean_length, postings = row
            cursor = await connection.execute(
                sql.SQL("SELECT text, metadata FROM {} ORDER BY row").format(_table(version_id))
            )
            chunks = [Chunk.from_metadata(text, metadata) async for text, metadata in cursor]
        version = await asyncio.to_thread(
            PostgresVersion, self, version_id, manifest, chunks, mean_length, postings
        )
        return SoundVersion(None, version, {}, name=version_name(version_id))

    async def write(self, new: NewVersion) -> WrittenVersion:
        """The base version's passages minus the removed documents, then the new ones, in one transaction."""
        async with self.connect() as connection, connection.transaction():
            cursor = await connection.execute(
                "INSERT INTO index_versions (manifest, dimension) VALUES (%s, %s) RETURNING id",
                (Jsonb(new.manifest), new.dimension),
            )
            (version_id,) = await cursor.fetchone()
            table = _table(version_id)
            await connection.execute(
                sql.SQL(
                    "CREATE TABLE {} (row integer PRIMARY KEY, doc_key text NOT NULL, kind text NOT NULL,"
                    " text text NOT NULL, metadata jsonb NOT NULL, embedding vector({}) NOT NULL,"
                    " terms text[] NOT NULL, counts integer[] NOT NULL, length integer NOT NULL)"
                ).format(table, sql.Literal(new.dimension))
            )
            kept = 0
            # Columns named: versions written before postings existed also have a full-text column.
            if isinstance(new.base, PostgresVersion):
                cursor = await connection.execute(
                    sql.SQL(
                        "INSERT INTO {} SELECT row_number() OVER (ORDER BY row) - 1, doc_key, kind, text,"
                        " metadata, embedding, terms, counts, length FROM {} WHERE doc_key <> ALL(%s)"
                    ).format(table, _table(new.base.version_id)),
                    (sorted(new.removed),),
                )
                kept = cursor.rowcount
            await self._copy_chunks(connection, table, kept, new.chunks, new.vectors)
            await self._finish(connection, version_id, table, new.manifest)
            await self._build_indexes(connection, table)
            await self._write_postings(connection, version_id, table)
            cursor = await connection.execute(
                "SELECT entries FROM index_versions WHERE id = %s", (version_id,)
            )
            (entries,) = await cursor.fetchone()
        return WrittenVersion(version_name(version_id), entries)

    @staticmethod
    async def _copy_chunks(connection, table, first_row: int, chunks: list[Chunk], vectors) -> None:
        columns = "row, doc_key, kind, text, metadata, embedding, terms, counts, length"
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(table, sql.SQL(columns))
        texts = [chunk.keyword_text() for chunk in chunks]
        words = await asyncio.to_thread(tokenize, texts) if chunks else []
        async with connection.cursor() as cursor, cursor.copy(statement) as copy:
            rows = enumerate(zip(chunks, _half_precision(vectors), words, strict=True), start=first_row)
            for row, (chunk, vector, tokens) in rows:
                counts = Counter(tokens)
                metadata = Jsonb(chunk.to_metadata())
                terms = list(counts)
                values = [counts[t] for t in terms]
                record = (row, chunk.doc_key, chunk.kind, chunk.text, metadata, vector, terms, values)
                await copy.write_row((*record, len(tokens)))

    @staticmethod
    async def _finish(connection, version_id: int, table, manifest: dict) -> None:
        """Keyword statistics and the manifest's passage count."""
        await connection.execute(
            sql.SQL(
                "INSERT INTO index_terms (version_id, term, entries)"
                " SELECT %s, term, count(*) FROM {}, unnest(terms) AS term GROUP BY term"
            ).format(table),
            (version_id,),
        )
        cursor = await connection.execute(
            sql.SQL(
                "SELECT count(*), coalesce(avg(length), 0), count(*) FILTER (WHERE kind = 'passage') FROM {}"
            ).format(table)
        )
        entries, mean_length, passages = await cursor.fetchone()
        manifest["counts"]["passages"] = passages
        await connection.execute(
            "UPDATE index_versions SET entries = %s, mean_length = %s, manifest = %s WHERE id = %s",
            (entries, float(mean_length), Jsonb(manifest), version_id),
        )

    async def _build_indexes(self, connection, table) -> None:
        """The HNSW and document indexes, built with `build_memory` (in this transaction only)."""
        await connection.execute(
            sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(self.build_memory))
        )
        for index in (
            "CREATE INDEX ON {} USING hnsw (embedding vector_ip_ops)",
            "CREATE INDEX ON {} (doc_key)",
        ):
            await connection.execute(sql.SQL(index).format(table))

    @staticmethod
    async def _write_postings(connection, version_id: int, table) -> None:
        """Each row's BM25 impact for each of its terms (IDF included), indexed by term, best impact first.

        Written in that order, so the best postings of a term lie together on disk.
        """
        cursor = await connection.execute(
            "SELECT entries, mean_length FROM index_versions WHERE id = %s", (version_id,)
        )
        entries, mean_length = await cursor.fetchone()
        postings = _postings(version_id)
        await connection.execute(
            sql.SQL(
                "CREATE TABLE {} (term text NOT NULL, row integer NOT NULL, impact float8 NOT NULL)"
            ).format(postings)
        )
        idf = "ln(1 + (%(entries)s::float8 - t.entries + 0.5) / (t.entries + 0.5))"
        await connection.execute(
            sql.SQL(
                "INSERT INTO {} (term, row, impact) SELECT e.term, p.row, {} * {} AS impact"
                " FROM {} p, unnest(p.terms, p.counts) AS e(term, tf)"
                " JOIN index_terms t ON t.version_id = %(version)s AND t.term = e.term"
                " ORDER BY e.term, impact DESC"
            ).format(postings, sql.SQL(idf), _saturation("e.tf", "p.length", mean_length), table),
            {"entries": entries, "version": version_id},
        )
        await connection.execute(
            sql.SQL("CREATE INDEX ON {} (term, impact DESC) INCLUDE (row)").format(postings)
        )
        # Without statistics the planner sorts all of a term's postings rather than read its best few.
        await connection.execute(sql.SQL("ANALYZE {}").format(postings))
        await connection.execute("UPDATE index_versions SET postings = true WHERE id = %s", (version_id,))

    async def publish(self, written: WrittenVersion, damaged: dict[str, str]) -> str:
        """Switch readers to the written version in one transaction, then drop versions no one needs."""
        version_id = int(written.name.removeprefix("v"))
        async with self.connect() as connection:
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO served_version (version_id) VALUES (%s)"
                    " ON CONFLICT (singleton) DO UPDATE SET version_id = excluded.version_id",
                    (version_id,),
                )
                await connection.execute(
                    "UPDATE index_versions SET published_at = now() WHERE id = %s", (version_id,)
                )
            await self._prune(connection, version_id)
        return written.name

    @staticmethod
    async def _prune(connection, served: int) -> None:
        """Drop all but the newest KEEP_VERSIONS published versions, and versions of syncs that died."""
        cursor = await connection.execute(
            "SELECT id FROM index_versions WHERE id <> %s AND (published_at IS NULL OR id NOT IN"
            " (SELECT id FROM index_versions WHERE published_at IS NOT NULL ORDER BY id DESC LIMIT %s))",
            (served, KEEP_VERSIONS),
        )
        for (version_id,) in await cursor.fetchall():
            async with connection.transaction():
                await connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_table(version_id)))
                await connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_postings(version_id)))
                await connection.execute("DELETE FROM index_versions WHERE id = %s", (version_id,))

    async def health(self, syncs: int = 5) -> dict:
        """What `helpdesk status` reports, in the shape of the data directory's report (see index_health)."""
        async with self.connect() as connection:
            cursor = await connection.execute(
                "SELECT v.id, v.manifest FROM served_version s JOIN index_versions v ON v.id = s.version_id"
            )
            served = await cursor.fetchone()
        last_syncs = await self.sync_log.recent(syncs)
        name = version_name(served[0]) if served else None
        report: dict = {"index": "PostgreSQL", "state": "ok" if served else "empty"}
        report.update(published=name, served=name)
        if served:
            report.update(served[1].get("counts", {}), created_at=served[1].get("created_at"))
        report.update(damaged={}, last_syncs=last_syncs)
        return report


class PostgresSyncLog:
    """The record of syncs in the `sync_history` table: the data directory's syncs.jsonl entries and retention,
    through the process's pool of connections."""

    def __init__(self, database: Database):
        self.database = database

    async def record(self, entry: dict) -> None:
        """Add a sync's entry, dropping those past the retention (the last KEEP_AT_LEAST are kept however old)."""
        cutoff = entry_started(entry) - timedelta(days=KEEP_DAYS)
        try:
            async with self.database.connect() as connection, connection.transaction():
                await connection.execute("INSERT INTO sync_history (entry) VALUES (%s)", (Jsonb(entry),))
                await connection.execute(
                    "DELETE FROM sync_history WHERE (entry->>'started_at')::timestamptz < %s"
                    " AND id NOT IN (SELECT id FROM sync_history ORDER BY id DESC LIMIT %s)",
                    (cutoff, KEEP_AT_LEAST),
                )
        except (psycopg.Error, DatabaseUnavailable) as failure:
            log.warning("Could not record the sync in the database: %s", failure)

    async def entries(self, since: datetime | None = None) -> list[dict]:
        """Syncs started at or after `since` (all kept, without it), oldest first."""
        return await self._select(
            "SELECT entry FROM sync_history WHERE %(since)s::timestamptz IS NULL"
            " OR (entry->>'started_at')::timestamptz >= %(since)s ORDER BY id",
            {"since": since},
        )

    async def recent(self, count: int = 5) -> list[dict]:
        """The last `count` syncs, newest first."""
        return await self._select(
            "SELECT entry FROM sync_history ORDER BY id DESC LIMIT %(count)s", {"count": count}
        )

    async def _select(self, statement: str, parameters: dict) -> list[dict]:
        async with self.database.connect() as connection:
            cursor = await connection.execute(statement, parameters)
            return [entry for (entry,) in await cursor.fetchall()]


class PostgresVersion(RankedIndex):
    """One published version in the database: its passages in memory for ranking, searched in SQL."""

    def __init__(
        self,
        backend: PostgresBackend,
        version_id: int,
        manifest: dict,
        chunks: list[Chunk],
        mean_length: float,
        postings: bool = False,
    ):
        self.backend = backend
        self.version_id = version_id
        self.manifest = manifest
        self.mean_length = mean_length or 1.0
        # Whether the version has its postings table: versions written before it existed are scanned.
        self.postings = postings
        self._arrange(chunks)

    def query_scores(self, vector: np.ndarray, query_text: str, fetch: int, mode: str) -> QueryScores:
        msg = "A PostgreSQL index version is searched asynchronously: use aquery, then rank or rate"
        raise NotImplementedError(msg)

    async def aquery_scores(self, vector: np.ndarray, query_text: str, fetch: int, mode: str) -> QueryScores:
        """Nearest rows by HNSW, keyword rows by full-text match scored BM25, then every row of their documents."""
        table = _table(self.version_id)
        query = Counter(tokenize([query_text])[0])
        async with self.backend.connect() as connection:
            entries = await self._entries(connection, list(query))
            weights = {} if mode == "dense" else self._weights(query, entries)
            nearest = await self._nearest(connection, table, vector, fetch) if mode != "bm25" else []
            keyword_top = await self._keyword_top(connection, table, query, weights, fetch)
            doc_keys = {self.chunks[row].doc_key for row, _ in [*nearest, *keyword_top]}
            doc_keys |= {target for key in list(doc_keys) for target in self.pointers.get(key, ())}
            cosines, bm25 = await self._documents(connection, table, sorted(doc_keys), vector, weights)
            found = await self._terms_found(connection, table, sorted(doc_keys), list(query))
        candidates = dict(nearest)
        keyword = None
        if mode != "dense":
            keyword = np.zeros(len(self.chunks), dtype=np.float32)
            for row, score in [*keyword_top, *bm25.items()]:
                keyword[row] = score
            best = max((score for _, score in keyword_top), default=0.0)
            if best > 0:
                candidates.update((row, cosines[row]) for row, _ in keyword_top if row not in candidates)
                keyword = keyword / keyword.max()
        return QueryScores(
            candidates,
            keyword,
            cosines=lambda rows: [cosines[row] for row in rows],
            coverage=lambda keys: self._coverage(set(query), entries, found, keys),
        )

    async def _entries(self, connection, terms: list[str]) -> dict[str, int]:
        """How many entries of this version hold each of the terms (terms it lacks are left out)."""
        if not terms:
            return {}
        cursor = await connection.execute(
            "SELECT term, entries FROM index_terms WHERE version_id = %s AND term = ANY(%s)",
            (self.version_id, terms),
        )
        return dict(await cursor.fetchall())

    def _weights(self, query: Counter, entries: dict[str, int]) -> dict[str, float]:
        """Each query term's BM25 weight: Lucene's IDF, counted as often as the query repeats the term."""
        total = len(self.chunks)
        return {
            term: count * math.log(1 + (total - entries[term] + 0.5) / (entries[term] + 0.5))
            for term, count in query.items()
            if term in entries
        }

    def _bm25(self) -> sql.Composable:
        """SQL of row p's BM25 score for the terms and weights of parameters %(terms)s and %(weights)s."""
        return sql.SQL(
            "(SELECT coalesce(sum(q.weight * {}), 0) FROM unnest(p.terms, p.counts) AS e(term, tf)"
            " JOIN unnest(%(terms)s::text[], %(weights)s::float8[]) AS q(term, weight) USING (term))"
        ).format(_saturation("e.tf", "p.length", self.mean_length))

    async def _nearest(self, connection, table, vector: np.ndarray, fetch: int) -> list[tuple[int, float]]:
        ef_search = min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, fetch))
        async with connection.transaction():
            await connection.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef_search)))
            cursor = await connection.execute(
                sql.SQL("SELECT row, -(embedding <#> %s) FROM {} ORDER BY embedding <#> %s LIMIT %s").format(
                    table
                ),
                (vector, vector, fetch),
            )
            return [(row, float(cosine)) for row, cosine in await cursor.fetchall()]

    async def _keyword_top(
        self, connection, table, query: Counter, weights: dict[str, float], fetch: int
    ) -> list[tuple[int, float]]:
        """The `fetch` rows of best BM25 score, best first (ties by row), with their scores."""
        if not weights:
            return []
        if not self.postings:
            return await self._keyword_scan(connection, table, weights, fetch)
        return await self._keyword_impacts(connection, query, weights, fetch)

    async def _keyword_impacts(
        self, connection, query: Counter, weights, fetch: int, depth: int = MAX_POSTINGS_READ
    ) -> list[tuple[int, float]]:
        """The best rows by their impacts summed over the best `depth` postings of each query term.

        A term with no more postings is read whole, so its part of every row's score is exact; past that, a
        row's part below the term's last impact read is left out.
        """
        terms = {term: query[term] for term in weights}
        cursor = await connection.execute(
            sql.SQL(
                "SELECT s.row, sum(q.count * s.impact) AS score"
                " FROM unnest(%(terms)s::text[], %(counts)s::int[]) AS q(term, count) CROSS JOIN LATERAL"
                " (SELECT row, impact FROM {} o WHERE o.term = q.term ORDER BY impact DESC LIMIT %(depth)s) s"
                " GROUP BY s.row ORDER BY score DESC, s.row LIMIT %(fetch)s"
            ).format(_postings(self.version_id)),
            {
                "terms": list(terms),
                "counts": list(terms.values()),
                "depth": depth,
                "fetch": fetch,
            },
        )
        return [(row, float(score)) for row, score in await cursor.fetchall()]

    async def _keyword_scan(self, connection, table, weights: dict[str, float], fetch: int):
        """The best rows of a version without postings: every row holding a query term, scored.

        Such versions, written before postings existed, also have a full-text column with a GIN index, which
        found the rows faster (100k entries, 100 queries: p50 / p95 227 / 548 ms against 377 / 625 ms for this
        scan of `terms`); but the scan works on every version (benchmarks take it as the exact top), and such a
        version is served only until the next sync replaces it."""
        cursor = await connection.execute(
            self.keyword_scan_sql(table),
            {"terms": list(weights), "weights": list(weights.values()), "fetch": fetch},
        )
        return [(row, float(score)) for row, score in await cursor.fetchall()]

    def keyword_scan_sql(self, table) -> sql.Composable:
        """SQL of `_keyword_scan`. OFFSET 0 keeps the inner query whole, so each matching row's BM25 is computed
        once: merged into the outer query, it would be computed again for `score > 0`."""
        return sql.SQL(
            "SELECT row, score FROM (SELECT p.row, {} AS score FROM {} p WHERE p.terms && %(terms)s::text[]"
            " OFFSET 0) s WHERE score > 0 ORDER BY score DESC, row LIMIT %(fetch)s"
        ).format(self._bm25(), table)

    async def _documents(self, connection, table, doc_keys: list[str], vector, weights: dict[str, float]):
        """Cosine and BM25 score of every row of the given documents."""
        if not doc_keys:
            return {}, {}
        statement = sql.SQL(
            "SELECT p.row, -(p.embedding <#> %(vector)s), {} FROM {} p WHERE p.doc_key = ANY(%(keys)s)"
        )
        parameters = {
            "terms": list(weights),
            "weights": list(weights.values()),
            "vector": vector,
            "keys": doc_keys,
        }
        cursor = await connection.execute(statement.format(self._bm25(), table), parameters)
        cosines, bm25 = {}, {}
        for row, cosine, score in await cursor.fetchall():
            cosines[row], bm25[row] = float(cosine), float(score)
        return cosines, bm25

    async def _terms_found(self, connection, table, doc_keys: list[str], terms: list[str]):
        """The query terms each document's passages and titles hold (its whole-document entry aside)."""
        if not terms or not doc_keys:
            return {}
        cursor = await connection.execute(
            sql.SQL(
                "SELECT DISTINCT p.doc_key, t.term FROM {} p, unnest(p.terms) AS t(term)"
                " WHERE p.doc_key = ANY(%s) AND p.kind <> %s AND t.term = ANY(%s)"
            ).format(table),
            (doc_keys, DOCUMENT_KIND, terms),
        )
        found: dict[str, set[str]] = {}
        for doc_key, term in await cursor.fetchall():
            found.setdefault(doc_key, set()).add(term)
        return found

    def _coverage(self, terms: set[str], entries: dict[str, int], found: dict, doc_keys: list[str]) -> float:
        """IDF-weighted share of the query's words that occur in the given documents (0..1)."""
        total = covered = 0.0
        held = set().union(*(found.get(key, set()) for key in doc_keys))
        for term in terms:
            idf = math.log((len(self.chunks) + 1) / (entries.get(term, 0) + 0.5))
            total += idf
            if term in held:
                covered += idf
        return covered / total if total > 0 else 0.0
