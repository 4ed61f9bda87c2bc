"""Fit the answer-or-refuse thresholds on several dev sets together, and show what each set scores.

Input: the `--answers-out` files of `helpdesk eval` runs made with the thresholds lowered (e.g.
HELPDESK_MIN_CONFIDENCE=0.5 HELPDESK_MIN_ANSWERABILITY=0 HELPDESK_MIN_SUPPORT=0), so that every question
above the lowest thresholds swept was written, grounded and scored. Three thresholds are swept: the
retrieval confidence, the answerability (before writing) and the support (the share of the words of
the model's unshown sketch that the excerpts contain). Raising a threshold only turns answers into refusals,
so each candidate pair's verdicts follow from those records without answering again.

    python bench/fit_decision.py /work/runs/lohelp.jsonl /work/runs/pyfaq.jsonl /work/runs/acme.jsonl

Prints the best points of the grid by the mean of the sets' scores (correct − wrong over questions), and
each set's figures at the best point, at the shipped defaults and with the retrieval confidence alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from bot.answer.decide import MIN_ANSWERABILITY, MIN_CONFIDENCE, MIN_SKETCH_SUPPORT
from bot.answer.scoring import CORRECT, MISSING, tally

CONFIDENCES = [round(0.50 + 0.02 * i, 2) for i in range(11)]
ANSWERABILITIES = [round(0.3 + 0.02 * i, 2) for i in range(31)]
SUPPORTS = [0.0] + [round(0.30 + 0.05 * i, 2) for i in range(14)]


def load(path: Path) -> list[dict]:
    """The scored records of one run (questions without key facts carry no verdict and are left out)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["verdict"] is not None]


def verdict_at(record: dict, thresholds: tuple[float, float, float]) -> str:
    """The record's verdict had the chain refused below these thresholds."""
    min_confidence, min_answerability, min_support = thresholds
    refused_now = (
        record["confidence"] < min_confidence
        or (record["answerability"] is not None and record["answerability"] < min_answerability)
        or record["support"] < min_support
    )
    if record["refused"] or not refused_now:
        return record["verdict"]
    return CORRECT if record["kind"] == "unanswerable" else MISSING


def figures(records: list[dict], thresholds: tuple[float, float, float]) -> dict:
    """Counts and score of one set at these thresholds."""
    return tally([verdict_at(r, thresholds) for r in records])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="answers-out files, one per dev set")
    args = parser.parse_args()
    sets = {path.stem.split(".")[0]: load(path) for path in args.runs}
    grid = []
    for thresholds in itertools.product(CONFIDENCES, ANSWERABILITIES, SUPPORTS):
        per_set = {name: figures(records, thresholds) for name, records in sets.items()}
        # Each set weighs the same, whatever its size: the product is judged per help center.
        mean = sum(f["score"] for f in per_set.values()) / len(per_set)
        grid.append((mean, thresholds))
    grid.sort(key=lambda row: (-row[0], row[1]))
    print("best (mean score over sets; min_confidence, min_answerability, min_support):")
    for mean, thresholds in grid[:10]:
        print(f"  {mean:.4f}  {thresholds}")
    for label, thresholds in [
        ("best", grid[0][1]),
        ("shipped", (MIN_CONFIDENCE, MIN_ANSWERABILITY, MIN_SKETCH_SUPPORT)),
        ("confidence alone", (MIN_CONFIDENCE, 0.0, 0.0)),
    ]:
        print(f"\n{label}: min_confidence, min_answerability, min_support = {thresholds}")
        for name, records in sets.items():
            f = figures(records, thresholds)
            print(
                f"  {name:10s} n {f['n']:4d}  correct {f['correct']:4d}  missing {f['missing']:4d}  "
                f"wrong {f['wrong']:4d} ({f['wrong'] / f['n']:.0%})  score {f['score']:.3f}"
            )


if __name__ == "__main__":
    main()
