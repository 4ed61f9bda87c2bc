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
from pathlib import Path

from backend_scale import WARMUP_QUERIES
from measure import latency_stats, load_average, matched_and_load
from pg_keyword_impacts import rows_matched, synthetic_index, weighted_queries
from psycopg import sql

from knowledge.index import FETCH_K
from knowledge.postgres import _table


def unfenced(version, table) -> sql.Composable:
    """The keyword statement as it was before the fence."""
    return sql.SQL(
        "SELECT row, score FROM (SELECT p.row, {} AS score FROM {} p WHERE p.terms && %(terms)s::text[]) s"
        " WHERE score > 0 ORDER BY score DESC, row LIMIT %(fetch)s"
    ).format(version._bm25(), table)


async def compare(size: int, queries: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-fence-"))
    folder.chmod(0o777)  # pgserver runs PostgreSQL as its own user when started by root
    async with synthetic_index(size, folder) as (corpus, version, _):
        table = _table(version.version_id)
        statements = {"fenced": version.keyword_scan_sql(table), "unfenced": unfenced(version, table)}
        samples: dict[str, list[float]] = {name: [] for name in statements}
        matched, loads = [], []
        async with version.backend.connect() as connection:
            async for number, _, weights in weighted_queries(version, connection, corpus, queries):
                parameters = {
                    "terms": list(weights),
                    "weights": list(weights.values()),
                    "fetch": FETCH_K,
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
                    matched.append(await rows_matched(connection, table, weights))
                    loads.append(load_average())
        return {
            "size": size,
            **{name: latency_stats(values) for name, values in samples.items()},
            **matched_and_load(matched, loads),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(compare(args.size, args.queries))))


if __name__ == "__main__":
    main()
