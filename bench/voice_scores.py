"""The brand voice on scored answers: does the rewrite change any verdict, and how much of it reads on-brand?

Input: `helpdesk eval --no-voice --answers-out` files. Every answer goes through the voice exactly as the
chain's last step does (rewrite, fact guard, fall back to the answer as composed), and is scored again.

    python bench/voice_scores.py /work/runs/acme.jsonl /work/runs/lohelp.jsonl --data-dir D --threads 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from tone_options import add_tone_options, parse_tone_options, tone_rewriter
from tone_quality import pct, style_classifier

from bot.answer.scoring import contains_key_facts, tally
from bot.voice.tuning import load_pairs


def _verdict(record: dict, text: str) -> str | None:
    """The record's verdict with `text` as the answer (refusals stay refusals)."""
    if record["verdict"] is None or record["refused"] or record["kind"] == "unanswerable":
        return record["verdict"]
    return "correct" if contains_key_facts(text, record["key_facts"]) else "wrong"


async def measure(args) -> dict:
    rewriter = tone_rewriter(args, args.adapter)
    rewriter.keep_words = not args.reword
    await rewriter.load()
    classifier = style_classifier([p for p in load_pairs(args.pairs) if p.split == "train"])
    results = {}
    for path in args.runs:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        questions = {q["id"]: q for q in map(json.loads, args.questions[path.stem.split(".")[0]].open())}
        posted, changed, seconds = [], [], []
        for record in records:
            record["key_facts"] = questions[record["id"]].get("key_facts")
            started = time.perf_counter()
            rewrite = await rewriter.rewrite(record["answer"])
            seconds.append(time.perf_counter() - started)
            posted.append(rewrite.output)
            if _verdict(record, rewrite.output) != record["verdict"]:
                changed.append({"id": record["id"], "answer": record["answer"], "voiced": rewrite.output})
        answered = [(r, text) for r, text in zip(records, posted, strict=True) if not r["refused"]]
        rewritten = [text for r, text in answered if text.strip() != r["answer"].strip()]
        results[path.stem] = {
            "without_voice": tally([r["verdict"] for r in records if r["verdict"] is not None]),
            "with_voice": tally(
                [v for r, text in zip(records, posted, strict=True) if (v := _verdict(r, text)) is not None]
            ),
            "verdicts_changed": changed,
            "answers_rewritten_pct": pct(len(rewritten), len(answered)),
            "answers_on_brand_pct": pct(
                int(sum(classifier.predict([t for _, t in answered]))), len(answered)
            ),
            "answers_on_brand_without_voice_pct": pct(
                int(sum(classifier.predict([r["answer"] for r, _ in answered]))), len(answered)
            ),
            "all_posted_on_brand_pct": pct(int(sum(classifier.predict(posted))), len(posted)),
            "median_voice_ms": round(1000 * statistics.median(seconds), 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="answers-out files, named SET.*.jsonl")
    parser.add_argument(
        "--questions",
        nargs="+",
        type=Path,
        required=True,
        help="the sets' questions files, in the order of the runs",
    )
    add_tone_options(parser, "JSONL pairs whose training split teaches the style classifier")
    parser.add_argument(
        "--reword", action="store_true", help="let the guard pass rewordings (no keep-every-word check)"
    )
    args = parse_tone_options(parser)
    args.questions = {run.stem.split(".")[0]: q for run, q in zip(args.runs, args.questions, strict=True)}
    print(json.dumps(asyncio.run(measure(args)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
