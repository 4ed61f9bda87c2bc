"""Eval figures and rankings of the dev sets on both index backends: the files backend vs PostgreSQL.

For each set the same sources are synced with `helpdesk sync` into a fresh data directory and into a fresh
PostgreSQL database (pgserver's PostgreSQL 16 with pgvector, HELPDESK_DATABASE_URL), then `helpdesk eval
--json --no-voice` runs on both with the extractive writer (retrieval figures and answers scored by key
facts), and every question's top-5 ranking and retrieval confidence are compared in process. The issue's
bar: every figure the same within ±0.02.

  nice -n 10 python bench/backend_eval.py --out bench/data/backend_eval.json
  nice -n 10 python bench/backend_eval.py --sets acme --generator local   # the local answer writer

Commands it runs for each set and backend (D a data directory, U the database's URL, only for PostgreSQL):
  HELPDESK_DATA_DIR=D [HELPDESK_DATABASE_URL=U] helpdesk sync SOURCE --json
  HELPDESK_DATA_DIR=D [HELPDESK_DATABASE_URL=U] HELPDESK_GENERATOR=extractive helpdesk eval QUESTIONS --json --no-voice
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import load_average

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = Path("/work/shared/eval")
SETS = {
    "lohelp": (SHARED_EVAL / "lohelp" / "docs", SHARED_EVAL / "lohelp" / "questions.jsonl"),
    "pyfaq": (SHARED_EVAL / "pyfaq" / "docs", SHARED_EVAL / "pyfaq" / "questions.jsonl"),
    "acme": (REPO / "examples" / "acme-kb", REPO / "examples" / "acme-kb-questions.jsonl"),
}
# Where the local answer model was assembled already (copied, never written to).
MODEL_CACHE = Path("/work/data/acme/models")
TOLERANCE = 0.02
TOP_K = 5


def helpdesk(arguments: list[str], environment: dict[str, str], cwd: Path) -> dict:
    """Run the CLI with `--json` and return its JSON object."""
    command = [sys.executable, "-m", "connectors", *arguments, "--json"]
    result = subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        msg = f"{' '.join(arguments)} failed:\n{result.stderr[-3000:]}"
        raise RuntimeError(msg)
    lines = result.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[first:]))


def environment(data_dir: Path, database_url: str | None, generator: str, model_cache: Path | None) -> dict:
    values = {k: v for k, v in os.environ.items() if not k.startswith(("HELPDESK_", "SLACK_", "DISCORD_"))}
    values.update(
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HELPDESK_DATA_DIR=str(data_dir),
        HELPDESK_GENERATOR=generator,
    )
    if database_url:
        values["HELPDESK_DATABASE_URL"] = database_url
    if model_cache:
        values["HELPDESK_MODEL_CACHE_DIR"] = str(model_cache)
    return values


def numbers(tree, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a JSON object, by its dotted path (timings left out)."""
    if isinstance(tree, dict):
        found: dict[str, float] = {}
        for key, value in tree.items():
            found.update(numbers(value, f"{prefix}{key}."))
        return found
    if isinstance(tree, bool) or not isinstance(tree, int | float) or "_ms" in prefix:
        return {}
    return {prefix.rstrip("."): float(tree)}


async def compare_rankings(questions: Path, files_dir: Path, pg_dir: Path, database_url: str) -> dict:
    """Each question's top-5 documents and retrieval confidence on both backends, as `helpdesk ask` retrieves."""
    from bot.runtime import open_knowledge_base
    from bot.settings import Settings

    items = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    files = open_knowledge_base(Settings(data_dir=files_dir, _env_file=None))
    database = open_knowledge_base(Settings(data_dir=pg_dir, database_url=database_url, _env_file=None))
    same_top1 = same_order = same_set = 0
    confidence_gap = score_gap = 0.0
    for item in items:
        ours = await files.retrieve(item["question"], k=TOP_K)
        theirs = await database.retrieve(item["question"], k=TOP_K)
        a = [hit.chunk.doc_key for hit in ours.hits]
        b = [hit.chunk.doc_key for hit in theirs.hits]
        same_top1 += a[:1] == b[:1]
        same_order += a == b
        same_set += set(a) == set(b)
        confidence_gap = max(confidence_gap, abs(ours.confidence - theirs.confidence))
        shared = min(len(ours.hits), len(theirs.hits))
        for x, y in zip(ours.hits[:shared], theirs.hits[:shared], strict=True):
            if x.chunk.doc_key == y.chunk.doc_key:
                score_gap = max(score_gap, abs(x.score - y.score))
    n = len(items)
    return {
        **await keyword_recall(await database.current(), [item["question"] for item in items]),
        "questions": n,
        "same_top1": round(same_top1 / n, 4),
        "same_top5_order": round(same_order / n, 4),
        "same_top5_set": round(same_set / n, 4),
        "max_confidence_gap": round(confidence_gap, 4),
        "max_score_gap_same_doc": round(score_gap, 4),
    }


async def keyword_recall(version, questions: list[str]) -> dict:
    """PostgreSQL's keyword search by impacts against BM25 scored on every matching row (the exact top): the
    share of the exact top `fetch` rows it returns too, and of questions whose rows and scores it matches."""
    from collections import Counter

    from knowledge.index import FETCH_K, tokenize
    from knowledge.postgres import _table

    table, fetch = _table(version.version_id), min(len(version), FETCH_K)
    recall, exact = [], []
    async with version.backend.connect() as connection:
        for question in questions:
            query = Counter(tokenize([question])[0])
            weights = version._weights(query, await version._entries(connection, list(query)))
            scanned = await version._keyword_scan(connection, table, weights, fetch)
            if not scanned:
                continue
            found = await version._keyword_top(connection, table, query, weights, fetch)
            recall.append(len({row for row, _ in found} & {row for row, _ in scanned}) / len(scanned))
            exact.append(
                [row for row, _ in found] == [row for row, _ in scanned]
                and all(abs(a - b) <= 1e-9 * b for (_, a), (_, b) in zip(found, scanned, strict=True))
            )
    return {
        "keyword_recall_at_fetch": round(sum(recall) / len(recall), 4),
        "keyword_exact_share": round(sum(exact) / len(exact), 4),
    }


def run_set(name: str, work: Path, server, generator: str, answers: bool) -> dict:
    source, questions = SETS[name]
    database = f"eval_{name}"
    server.psql(f"DROP DATABASE IF EXISTS {database};")
    server.psql(f"CREATE DATABASE {database};")
    url = server.get_uri(database)
    model_cache = None
    if generator == "local":
        model_cache = work / "models"
        if not model_cache.exists():
            shutil.copytree(MODEL_CACHE, model_cache)
    report: dict = {"set": name, "generator": generator}
    for backend, database_url in (("files", None), ("postgres", url)):
        data_dir = work / f"{name}-{backend}"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        env = environment(data_dir, database_url, generator, model_cache)
        started = time.perf_counter()
        synced = helpdesk(["sync", str(source)], env, work)
        sync_s = time.perf_counter() - started
        evaluation = ["eval", str(questions), "--no-voice", *([] if answers else ["--no-answers"])]
        started = time.perf_counter()
        figures = helpdesk(evaluation, env, work)
        report[backend] = {
            "sync": {
                "chunks": synced.get("chunks_total"),
                "seconds": round(sync_s, 1),
                "load": load_average(),
            },
            "eval_seconds": round(time.perf_counter() - started, 1),
            "load": load_average(),
            "figures": figures,
        }
    ours, theirs = numbers(report["files"]["figures"]), numbers(report["postgres"]["figures"])
    gaps = {key: round(abs(ours[key] - theirs.get(key, float("nan"))), 4) for key in ours}
    rates = {key: gap for key, gap in gaps.items() if abs(ours[key]) <= 1 and abs(theirs.get(key, 2)) <= 1}
    report["largest_gaps"] = dict(sorted(gaps.items(), key=lambda item: -item[1])[:8])
    report["max_rate_gap"] = max(rates.values(), default=0.0)
    report["within_tolerance"] = report["max_rate_gap"] <= TOLERANCE
    report["rankings"] = asyncio.run(
        compare_rankings(questions, work / f"{name}-files", work / f"{name}-postgres", url)
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--generator", default="extractive", choices=["extractive", "local"])
    parser.add_argument("--no-answers", action="store_true", help="retrieval figures only")
    parser.add_argument(
        "--work", type=Path, help="keep the data directories here (default: a temporary folder)"
    )
    parser.add_argument("--out", type=Path, help="append one JSON line per set to this file")
    args = parser.parse_args()
    import pgserver

    work = args.work or Path(tempfile.mkdtemp(prefix="backend-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    pg_folder = Path(tempfile.mkdtemp(prefix="backend-eval-pg-"))
    pg_folder.chmod(0o777)  # pgserver runs PostgreSQL as its own user when started by root
    server = pgserver.get_server(pg_folder, cleanup_mode="stop")
    try:
        for name in args.sets:
            report = run_set(name, work, server, args.generator, not args.no_answers)
            line = json.dumps(report)
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(line + "\n")
    finally:
        server.cleanup()
        shutil.rmtree(pg_folder, ignore_errors=True)


if __name__ == "__main__":
    main()
