"""Answer latency of the bot as configured (answer model and voice): import, model load, per-question p50/p95, RSS."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

STARTED = time.perf_counter()

from measure import current_rss_mb, load_average, peak_rss_mb  # noqa: E402

from bot.models import Question  # noqa: E402
from bot.runtime import build_bot  # noqa: E402
from bot.settings import Settings  # noqa: E402
from knowledge.evaluation import load_questions  # noqa: E402

IMPORTED = time.perf_counter()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(settings: Settings, questions: list[str], warmup: int) -> dict:
    started = time.perf_counter()
    bot = build_bot(settings)
    await bot.chain.retriever.knowledge_base.current()
    await bot.warm_up()  # the answer model and the tone model
    loaded = time.perf_counter()
    for text in questions[:warmup]:
        await bot.chain.runnable.ainvoke({"question": Question(text + " (warm-up)")})
    timings: dict[str, list[float]] = {"total": [], "retrieve": [], "decide": [], "generate": [], "tone": []}
    refused = 0
    for text in questions:
        answer = await bot.chain.runnable.ainvoke({"question": Question(text)})
        refused += answer.refused
        for step, values in timings.items():
            values.append(answer.timings_ms.get(step, 0.0))
    totals = timings["total"]
    return {
        "questions": len(questions),
        "refused": refused,
        "generator": settings.generator,
        "voice": bot.chain.tone is not None,
        "import_s": round(IMPORTED - STARTED, 2),
        "model_and_index_load_s": round(loaded - started, 2),
        "total_ms": {"p50": round(statistics.median(totals), 1), "p95": round(percentile(totals, 0.95), 1)},
        **{
            f"{step}_ms_p50": round(statistics.median(v), 1) for step, v in timings.items() if step != "total"
        },
        "rss_mb": round(current_rss_mb()),
        "peak_rss_mb": round(peak_rss_mb()),
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions", type=Path, help="questions.jsonl (the question field is used)")
    parser.add_argument("--data-dir", type=Path, required=True, help="a synced data directory")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--generator", default=None, help="local, extractive or openai (default: as configured)"
    )
    parser.add_argument("--no-voice", action="store_true", help="answer without the brand-voice rewrite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    texts = [q["question"] for q in load_questions(args.questions)][: args.limit]
    overrides = {"data_dir": args.data_dir}
    if args.generator:
        overrides["generator"] = args.generator
    if args.no_voice:
        overrides["tone_enabled"] = False
    result = asyncio.run(measure(Settings(**overrides), texts, args.warmup))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
