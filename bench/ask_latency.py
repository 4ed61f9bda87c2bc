"""Answer latency of the default (extractive) bot: start-up and model load, then per-question p50/p95."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

STARTED = time.perf_counter()

from bot.models import Question  # noqa: E402
from bot.runtime import build_bot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from knowledge.evaluation import load_questions  # noqa: E402

IMPORTED = time.perf_counter()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(data_dir: Path, questions: list[str], warmup: int) -> dict:
    started = time.perf_counter()
    bot = build_bot(Settings(data_dir=data_dir, tone_enabled=False))
    await bot.chain.retriever.knowledge_base.current()
    loaded = time.perf_counter()
    for text in questions[:warmup]:
        await bot.chain.runnable.ainvoke({"question": Question(text + " (warm-up)")})
    totals, retrieve, generate = [], [], []
    for text in questions:
        answer = await bot.chain.runnable.ainvoke({"question": Question(text)})
        totals.append(answer.timings_ms["total"])
        retrieve.append(answer.timings_ms["retrieve"])
        generate.append(answer.timings_ms.get("generate", 0.0))
    return {
        "questions": len(questions),
        "import_s": round(IMPORTED - STARTED, 2),
        "model_and_index_load_s": round(loaded - started, 2),
        "total_ms": {"p50": round(statistics.median(totals), 1), "p95": round(percentile(totals, 0.95), 1)},
        "retrieve_ms_p50": round(statistics.median(retrieve), 1),
        "generate_ms_p50": round(statistics.median(generate), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions", type=Path, help="questions.jsonl (the question field is used)")
    parser.add_argument("--data-dir", type=Path, required=True, help="a synced data directory")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    texts = [q["question"] for q in load_questions(args.questions)][: args.limit]
    result = asyncio.run(measure(args.data_dir, texts, args.warmup))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
