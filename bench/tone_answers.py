"""The brand voice on the bot's real answers: how many are rewritten, and whether the raw rewrites keep every fact.

The knowledge base's questions are answered as composed (no rewrite); each answer that may be rewritten (one
paragraph of prose, no table row) goes through the tone model, and its raw reply is checked like the
held-out pairs in tone_quality.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from measure import load_average
from tone_options import add_tone_options, parse_tone_options, tone_rewriter
from tone_quality import keeps_every_fact, keeps_facts_and_sense, only_invents, pct, style_classifier

from bot.evaluation import answer_all
from bot.runtime import build_bot
from bot.settings import Settings
from bot.voice.tuning import load_pairs
from knowledge.evaluation import load_questions


def measure(args) -> dict:
    bot = build_bot(Settings(data_dir=args.kb_dir, tone_enabled=False))  # answers as composed
    rows = asyncio.run(answer_all(bot.chain, load_questions(args.questions)))
    answers = [answer.text for _, answer in rows]
    rewriter = tone_rewriter(args, args.adapter)
    eligible = [text for text in answers if rewriter.kept_as_written(text) is None]
    outputs, seconds = [], []
    for text in eligible:
        started = time.perf_counter()
        outputs.append(rewriter.generate(text).text)
        seconds.append(time.perf_counter() - started)
    pairs = list(zip(eligible, outputs, strict=True))
    if args.outputs:
        args.outputs.write_text("".join(json.dumps({"input": t, "output": o}) + "\n" for t, o in pairs))
    verdicts = [rewriter.check(text, out) for text, out in pairs]
    passed = [pair for pair, verdict in zip(pairs, verdicts, strict=True) if verdict.passed]
    rewritten = [out for text, out in passed if out.strip() != text.strip()]
    classifier = style_classifier([p for p in load_pairs(args.pairs) if p.split == "train"])
    on_brand = int(sum(classifier.predict(rewritten))) if rewritten else 0
    return {
        "answers": len(answers),
        "kept_as_written": len(answers) - len(eligible),
        "rewritable": len(eligible),
        "raw_fact_preservation_pct": pct(sum(map(keeps_every_fact, eligible, outputs)), len(eligible)),
        "raw_facts_and_sense_kept_pct": pct(
            sum(keeps_facts_and_sense(text, out, rewriter.voice) for text, out in pairs), len(eligible)
        ),
        "guard_pass_pct": pct(len(passed), len(eligible)),
        "refused_only_for_invented_wording_pct": pct(
            sum(only_invents(v.problems) for v in verdicts), len(eligible)
        ),
        "posted_rewritten_pct": pct(len(rewritten), len(eligible)),
        "posted_on_brand_pct": pct(on_brand, len(eligible)),
        "median_rewrite_ms": round(1000 * statistics.median(seconds), 1) if seconds else None,
        "adapter": str(args.adapter),
        "backend": rewriter.backend,
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions", type=Path, help="questions.jsonl of the knowledge base (question field)")
    parser.add_argument(
        "--kb-dir", type=Path, required=True, help="a data directory with the synced knowledge base"
    )
    add_tone_options(parser, "JSONL pairs whose training split teaches the style classifier")
    parser.add_argument(
        "--outputs", type=Path, default=None, help="also write every rewrite to this JSONL file"
    )
    args = parse_tone_options(parser)
    print(json.dumps(measure(args), indent=2))


if __name__ == "__main__":
    main()
