"""Calibrate the refusal thresholds: sweep retrieval confidence and answer support over a question set."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bot.evaluation import answer_all
from bot.runtime import build_bot
from bot.settings import Settings
from knowledge.evaluation import load_questions


def sweep(
    rows: list[tuple[bool, float, float]], min_answer_rate: float, min_refusal_rate: float
) -> list[dict]:
    """Answer and refusal rates for every threshold pair, best first.

    Best: meets both floors and answers the most; failing that, meets the answer floor and refuses the most.
    """
    grid = [round(0.20 + 0.01 * i, 2) for i in range(56)]
    results = []
    for confidence_floor in grid:
        for support_floor in [round(0.02 * i, 2) for i in range(36)]:
            answered = [ok for ok, c, s in rows if c >= confidence_floor and s >= support_floor]
            answerable = [ok for ok, _, _ in rows if ok]
            unanswerable = [ok for ok, _, _ in rows if not ok]
            answer_rate = sum(answered) / len(answerable)
            refusal_rate = 1 - (len(answered) - sum(answered)) / len(unanswerable)
            results.append(
                {
                    "min_confidence": confidence_floor,
                    "min_support": support_floor,
                    "answer_rate": round(answer_rate, 4),
                    "refusal_rate": round(refusal_rate, 4),
                }
            )

    def key(r):
        answers_enough = r["answer_rate"] >= min_answer_rate
        both = answers_enough and r["refusal_rate"] >= min_refusal_rate
        return (both, answers_enough, r["answer_rate"] if both else r["refusal_rate"], r["answer_rate"])

    return sorted(results, key=key, reverse=True)


async def collect(data_dir: Path, questions: Path, kinds: set[str] | None) -> list[tuple[bool, float, float]]:
    """(answerable, confidence, support) of every question (of the given kinds; unanswerable ones always)."""
    settings = Settings(data_dir=data_dir, min_confidence=0.0, min_support=0.0, tone_enabled=False)
    bot = build_bot(settings)
    items = [
        q for q in load_questions(questions) if not q["gold_doc_ids"] or kinds is None or q["kind"] in kinds
    ]
    return [(bool(q["gold_doc_ids"]), a.confidence, a.support) for q, a in await answer_all(bot.chain, items)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "questions", type=Path, nargs="+", help="questions.jsonl files (synced data dir each)"
    )
    parser.add_argument(
        "--data-dir", type=Path, nargs="+", required=True, help="one synced data dir per file"
    )
    parser.add_argument("--min-answer-rate", type=float, default=0.9)
    parser.add_argument("--min-refusal-rate", type=float, default=0.85)
    parser.add_argument(
        "--kinds",
        default=None,
        help="comma-separated kinds of answerable questions to count (default: all, e.g. paraphrase only)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for questions, data_dir in zip(args.questions, args.data_dir, strict=True):
        rows += asyncio.run(collect(data_dir, questions, set(args.kinds.split(",")) if args.kinds else None))
    ranked = sweep(rows, args.min_answer_rate, args.min_refusal_rate)
    if args.json:
        print(json.dumps({"best": ranked[0], "top": ranked[:10], "n": len(rows)}))
        return
    print(f"{len(rows)} questions ({sum(r[0] for r in rows)} answerable)")
    for r in ranked[:10]:
        print(r)


if __name__ == "__main__":
    main()
