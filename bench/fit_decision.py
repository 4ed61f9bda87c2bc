"""Fit the answer-or-refuse thresholds on several dev sets together, and show what each set scores.

Input: the `--answers-out` files of `helpdesk eval` runs made with the thresholds lowered (e.g.
HELPDESK_MIN_CONFIDENCE=0.5 HELPDESK_MIN_ANSWERABILITY=0), so that every question above the lowest
thresholds swept was written, grounded and scored. Raising a threshold only turns answers into refusals,
so each candidate pair's verdicts follow from those records without answering again.

    python bench/fit_decision.py /work/runs/lohelp.jsonl /work/runs/pyfaq.jsonl /work/runs/acme.jsonl

Prints the pooled score (correct − wrong over all questions of all sets) for every pair on the grid,
the best pair, and each set's figures at the best pair and at the shipped defaults.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.answer.decide import MIN_ANSWERABILITY, MIN_CONFIDENCE
from bot.answer.scoring import CORRECT, MISSING, tally

CONFIDENCES = [round(0.50 + 0.02 * i, 2) for i in range(11)]
ANSWERABILITIES = [round(0.05 * i, 2) for i in range(20)]


def load(path: Path) -> list[dict]:
    """The scored records of one run (questions without key facts carry no verdict and are left out)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["verdict"] is not None]


def verdict_at(record: dict, min_confidence: float, min_answerability: float) -> str:
    """The record's verdict had the chain refused below these thresholds."""
    refused_now = record["confidence"] < min_confidence or (
        record["answerability"] is not None and record["answerability"] < min_answerability
    )
    if record["refused"] or not refused_now:
        return record["verdict"]
    return CORRECT if record["kind"] == "unanswerable" else MISSING


def figures(records: list[dict], min_confidence: float, min_answerability: float) -> dict:
    """Counts and score of one set at a pair of thresholds."""
    return tally([verdict_at(r, min_confidence, min_answerability) for r in records])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="answers-out files, one per dev set")
    args = parser.parse_args()
    sets = {path.stem.split(".")[0]: load(path) for path in args.runs}
    grid = []
    for confidence in CONFIDENCES:
        for answerability in ANSWERABILITIES:
            per_set = {name: figures(records, confidence, answerability) for name, records in sets.items()}
            # Each set weighs the same, whatever its size: the product is judged per help center.
            pooled = sum(f["score"] for f in per_set.values()) / len(per_set)
            grid.append((pooled, confidence, answerability, per_set))
    grid.sort(key=lambda row: (-row[0], row[1], row[2]))
    print("best pairs (mean score over sets, min_confidence, min_answerability):")
    for pooled, confidence, answerability, _ in grid[:10]:
        print(f"  {pooled:.4f}  {confidence:.2f}  {answerability:.2f}")
    best = grid[0]
    for label, (confidence, answerability) in [
        ("best", best[1:3]),
        ("shipped", (MIN_CONFIDENCE, MIN_ANSWERABILITY)),
    ]:
        print(f"\n{label}: min_confidence {confidence:.2f}, min_answerability {answerability:.2f}")
        for name, records in sets.items():
            f = figures(records, confidence, answerability)
            print(
                f"  {name:10s} n {f['n']:4d}  correct {f['correct']:4d}  missing {f['missing']:4d}  "
                f"wrong {f['wrong']:4d} ({f['wrong'] / f['n']:.0%})  score {f['score']:.3f}"
            )


if __name__ == "__main__":
    main()
