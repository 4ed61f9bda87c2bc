"""PostgreSQL keyword search by BM25 impacts vs scoring every matching row, interleaved on one synthetic index.

The index of `backend_scale.Corpus` (N entries) is written and published through the backend's real path,
then each query (five words of a document) is searched in turn by the full scan (`_keyword_scan`: every
row holding a query term, BM25 computed in SQL, the exact top) and by the postings
(`_keyword_impacts`) with each cap on the postings read per term (0: no cap). Recall@fetch is the share of
the scan's top `fetch` rows the impacts search returns too; "exact" the share of queries whose rows and
scores are the scan's, "same order" those also in the scan's order (rows of equal score may swap: sums of
impacts and SQL's BM25 differ in the last bits). All run on the same queries, in turn, so machine load
weighs on all alike:
  nice -n 19 python bench/pg_keyword_impacts.py --size 100000 --out bench/data/backends/pg_keyword_impacts.jsonl

`--folder` keeps the server's data and reuses its index on the next run. The figures that chose
MAX_POSTINGS_READ are in knowledge/postgres.py; raw records in bench/data/backends/pg_keyword_impacts.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from backend_scale import DIMENSION, WARMUP_QUERIES, Corpus
from langchain_core.embeddings import DeterministicFakeEmbedding
from measure import latency_stats, load_average, matched_and_load, print_line
from psycopg import sql

from knowledge.index import FETCH_K, tokenize
from knowledge.postgres import (
    MAX_POSTINGS_READ,
    PostgresBackend,
    PostgresVersion,
    _postings,
    _table,
)

UNCAPPED = 10**9


async def _size_mb(connection, table) -> float:
    cursor = await connection.execute(sql.SQL("SELECT pg_total_relation_size('{}')").format(table))
    return round((await cursor.fetchone())[0] / 2**20)


@contextlib.asynccontextmanager
async def synthetic_index(size: int, folder: Path) -> AsyncIterator[tuple[Corpus, PostgresVersion, dict]]:
    """The corpus of `size` entries and its version, written and published in a PostgreSQL server in
    `folder` (unless the server there already serves one), with the write's time."""
    import pgserver

    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        backend = PostgresBackend(server.get_uri("postgres"))
        corpus = Corpus(size)
        ingest = {}
        if await backend.published() is None:
            started = time.perf_counter()
            await backend.publish(await backend.write(corpus.new_version()), {})
            ingest = {"write_s": round(time.perf_counter() - started, 1), "ingest_load": load_average()}
        version = (await backend.load_newest_sound(DeterministicFakeEmbedding(size=DIMENSION))).version
        yield corpus, version, ingest
    finally:
        server.cleanup()


async def rows_matched(connection, table, weights: dict[str, float]) -> int:
    """How many rows hold any of the terms (the rows the full scan scores)."""
    cursor = await connection.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE terms && %s::text[]").format(table), (list(weights),)
    )
    return (await cursor.fetchone())[0]


async def weighted_queries(version, connection, corpus: Corpus, queries: int):
    """Each query of the warm-up and the `queries` timed ones: its number, its term counts and its BM25
    weights (queries of no known term left out)."""
    for number, text in enumerate(corpus.query_texts[: WARMUP_QUERIES + queries]):
        query = Counter(tokenize([text])[0])
        weights = version._weights(query, await version._entries(connection, list(query)))
        if weights:
            yield number, query, weights


async def compare(size: int, queries: int, caps: list[int], folder: Path) -> dict:
    async with synthetic_index(size, folder) as (corpus, version, ingest):
        table = _table(version.version_id)
        fetch = min(len(version), FETCH_K)
        names = ["scan", *(f"cap_{cap}" for cap in caps)]
        samples: dict[str, list[float]] = {name: [] for name in names}
        recall: dict[str, list[float]] = {name: [] for name in names[1:]}
        exact: dict[str, list[bool]] = {name: [] for name in names[1:]}
        ordered: dict[str, list[bool]] = {name: [] for name in names[1:]}
        matched, loads = [], []
        async with version.backend.connect() as connection:
            async for number, query, weights in weighted_queries(version, connection, corpus, queries):
                started = time.perf_counter()
                scanned = await version._keyword_scan(connection, table, weights, fetch)
                elapsed = {"scan": time.perf_counter() - started}
                found = {}
                for cap, name in zip(caps, names[1:], strict=True):
                    started = time.perf_counter()
                    found[name] = await version._keyword_impacts(
                        connection, query, weights, fetch, cap or UNCAPPED
                    )
                    elapsed[name] = time.perf_counter() - started
                if number < WARMUP_QUERIES:
                    continue
                for name, seconds in elapsed.items():
                    samples[name].append(seconds)
                expected = {row for row, _ in scanned}
                for name, top in found.items():
                    top_rows = [row for row, _ in top]
                    recall[name].append(len(expected & set(top_rows)) / len(expected))
                    same_scores = all(
                        abs(a - b) <= 1e-9 * max(1.0, abs(b))
                        for (_, a), (_, b) in zip(top, scanned, strict=True)
                    )
                    exact[name].append(len(top) == len(scanned) and same_scores and set(top_rows) == expected)
                    ordered[name].append([row for row, _ in scanned] == top_rows)
                matched.append(await rows_matched(connection, table, weights))
                loads.append(load_average())
            sizes = {
                "passages_table_mb": await _size_mb(connection, table),
                "postings_table_mb": await _size_mb(connection, _postings(version.version_id)),
            }
            cursor = await connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(_postings(version.version_id))
            )
            sizes["postings"] = (await cursor.fetchone())[0]
            cursor = await connection.execute(
                sql.SQL("SELECT count(*) FROM {} GROUP BY term ORDER BY 1 DESC LIMIT 5").format(
                    _postings(version.version_id)
                )
            )
            sizes["longest_lists"] = [n for (n,) in await cursor.fetchall()]
        return {
            "size": size,
            "fetch": fetch,
            **ingest,
            **sizes,
            **{name: latency_stats(values) for name, values in samples.items()},
            "recall_at_fetch": {name: round(sum(v) / len(v), 4) for name, v in recall.items()},
            "recall_at_fetch_min": {name: round(min(v), 4) for name, v in recall.items()},
            "exact_share": {name: round(sum(v) / len(v), 3) for name, v in exact.items()},
            "same_order_share": {name: round(sum(v) / len(v), 3) for name, v in ordered.items()},
            **matched_and_load(matched, loads),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--caps", type=int, nargs="+", default=[1600, 6400, 12800, 25600, MAX_POSTINGS_READ, 0]
    )
    parser.add_argument("--folder", type=Path, help="keep the server's data here and reuse its index")
    parser.add_argument("--out", type=Path, help="append the JSON line to this file")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-impacts-"))
    if not (folder / "PG_VERSION").exists():
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)  # pgserver runs PostgreSQL as its own user when started by root
    print_line(json.dumps(asyncio.run(compare(args.size, args.queries, args.caps, folder))), args.out)


if __name__ == "__main__":
    main()
