"""Tone rewrite speed: latency of guarded rewrites of ~80-token answers, and memory with the model loaded."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from measure import current_rss_mb, latency_stats, load_average, peak_rss_mb
from tone_options import add_tone_options, parse_tone_options, tone_rewriter

from bot.voice.tuning import load_pairs

TARGET_P50_MS = 2000.0
TARGET_RSS_MB = 2048.0


def answers_of_about(length, texts: list[str], tokens: int, count: int) -> list[str]:
    """Answers of `tokens` ± 15% tokens: held-out answers, alone or two joined, closest to that length first."""

    candidates = texts + [f"{a} {b}" for a, b in zip(texts, texts[1:] + texts[:1], strict=True)]
    near = [(abs(length(t) - tokens), t) for t in candidates if abs(length(t) - tokens) <= 0.15 * tokens]
    return [text for _, text in sorted(near)[:count]]


async def measure(args) -> dict:
    rewriter = tone_rewriter(args, args.adapter, timeout_s=args.timeout)
    started = time.perf_counter()
    await rewriter.load()
    load_s = time.perf_counter() - started
    heldout = [p.input for p in load_pairs(args.pairs) if p.split != "train"]
    answers = answers_of_about(rewriter.count_tokens, heldout, args.tokens, args.runs + 1)
    await rewriter.rewrite(answers[0])  # warm-up
    latencies, results = [], []
    for answer in answers[1:]:
        result = await rewriter.rewrite(answer)
        latencies.append(result.ms / 1000)
        results.append(result)
    input_tokens = [rewriter.count_tokens(a) for a in answers[1:]]
    stats = latency_stats(latencies)
    return {
        "runs": len(results),
        "mean_input_tokens": round(sum(input_tokens) / len(input_tokens), 1),
        "latency": stats,
        "rewritten_pct": round(100 * sum(r.guard_passed for r in results) / len(results), 1),
        "timed_out": sum(any("longer than" in p for p in r.problems) for r in results),
        "load_s": round(load_s, 2),
        "backend": rewriter.backend,
        "threads": args.threads or "every core",
        "rss_mb": round(current_rss_mb(), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average": load_average(),
        "targets_met": {
            "p50_latency": stats["p50_ms"] < TARGET_P50_MS,
            "peak_rss": peak_rss_mb() < TARGET_RSS_MB,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_tone_options(parser, "JSONL pairs; held-out answers are used")
    parser.add_argument("--runs", type=int, default=15, help="rewrites to time (after one warm-up)")
    parser.add_argument("--tokens", type=int, default=80, help="answer length in tokens")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="rewrite timeout in seconds (high: measure)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = parse_tone_options(parser)
    result = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(result))
        return
    latency = result["latency"]
    print(
        f"{result['runs']} rewrites of ~{result['mean_input_tokens']}-token answers, "
        f"{result['backend']}, {result['threads']} thread(s), load average {result['load_average']}"
    )
    print(
        f"latency p50 {latency['p50_ms']:.0f} ms (target < {TARGET_P50_MS:.0f}), p95 {latency['p95_ms']:.0f} ms; "
        f"rewritten {result['rewritten_pct']}%, timed out {result['timed_out']}"
    )
    print(
        f"model load {result['load_s']} s; RSS {result['rss_mb']} MB, peak {result['peak_rss_mb']} MB "
        f"(target < {TARGET_RSS_MB:.0f})"
    )
    print(f"Targets met: {result['targets_met']}")


if __name__ == "__main__":
    main()
