"""PostgreSQL keyword search with and without the OFFSET 0 fence, interleaved on one synthetic index.

Without the fence PostgreSQL merges the scoring subquery into the outer query and computes each matching
row's BM25 twice (once for `score > 0`, once for the sort). Both statements run on the same queries, in
turn, so machine load weighs on both alike:
  nice -n 10 python bench/pg_keyword_fence.py --size 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from backend_scale import DIMENSION, WARMUP_QUERIES, Corpus
from langchain_core.embeddings import DeterministicFakeEmbedding
from measure import latency_stats, load_average
from psycopg import sql

from knowledge.index import FETCH_K, tokenize
from knowledge.postgres import PostgresBackend, _table, _tsquery


def unfenced(version, table) -> sql.Composable:
    """The keyword statement as it was before the fence."""
    return sql.SQL(
        "SELECT row, score FROM (SELECT p.row, {} AS score FROM {} p WHERE p.keywords @@ %(match)s::tsquery) s"
        " WHERE score > 0 ORDER BY score DESC, row LIMIT %(fetch)s"
    ).format(version._bm25(), table)


async def compare(size: int, queries: int) -> dict:
    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="bench-fence-"))
    folder.chmod(0o777)  # pgserver runs PostgreSQL as its own user when started by root
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE bench;")
        corpus = Corpus(size)
        backend = PostgresBackend(server.get_uri("bench"))
        await backend.publish(await backend.write(corpus.new_version()), {})
        version = (await backend.load_newest_sound(DeterministicFakeEmbedding(size=DIMENSION))).version
        table = _table(version.version_id)
        statements = {"fenced": version.keyword_scan_sql(table), "unfenced": unfenced(version, table)}
        samples: dict[str, list[float]] = {name: [] for name in statements}
        matched, loads = [], []
        async with backend.connect() as connection:
            for number, text in enumerate(corpus.query_texts[: WARMUP_QUERIES + queries]):
                query = Counter(tokenize([text])[0])
                weights = version._weights(query, await version._entries(connection, list(query)))
                if not weights:
                    continue
                parameters = {
                    "terms": list(weights),
                    "weights": list(weights.values()),
                    "fetch": FETCH_K,
                    "match": _tsquery(weights),
                }
                results = {}
                for name, statement in statements.items():
                    started = time.perf_counter()
                    cursor = await connection.execute(statement, parameters)
                    results[name] = await cursor.fetchall()
                    if number >= WARMUP_QUERIES:
                        samples[name].append(time.perf_counter() - started)
                assert results["fenced"] == results["unfenced"]
                if number >= WARMUP_QUERIES:
                    cursor = await connection.execute(
                        sql.SQL("SELECT count(*) FROM {} WHERE keywords @@ %s::tsquery").format(table),
                        (parameters["match"],),
                    )
                    matched.append((await cursor.fetchone())[0])
                    loads.append(load_average())
        return {
            "size": size,
            **{name: latency_stats(values) for name, values in samples.items()},
            "rows_matched_p50": int(sorted(matched)[len(matched) // 2]),
            "load": round(sum(loads) / len(loads), 2),
        }
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(compare(args.size, args.queries))))


if __name__ == "__main__":
    main()
