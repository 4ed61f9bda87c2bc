"""Fit the answer-or-refuse rule on several dev sets together, and show what each set scores.

Input: the `--answers-out` files of `helpdesk eval` runs made with the answer score's threshold lowered
(HELPDESK_MIN_ANSWER_SCORE=0), so that every question above the confidence floor was judged, written,
grounded and scored. Raising a floor only turns answers into refusals, so the verdicts of
any stricter rule follow from those records without answering again.

The rule: refuse below the retrieval confidence floor (MIN_SCORED_CONFIDENCE); above it, answer when the answer
score — a logistic model of the retrieval confidence, the answerability and the support (the share of the
words of the model's unshown sketch that the excerpts contain) — reaches its threshold. The model is fitted
on the answers of all sets together (right or not), then the threshold that maximises the mean of the sets'
scores (correct − wrong over questions; each set weighs the same) is chosen. Each set is also scored by a
rule fitted on the other sets alone, to show what carries over to a help center the fit has not seen.

    python bench/fit_decision.py lohelp.jsonl pyfaq.jsonl acme.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.answer.decide import (
    ANSWER_SCORE_INTERCEPT,
    ANSWER_SCORE_WEIGHTS,
    MIN_ANSWER_SCORE,
    MIN_SCORED_CONFIDENCE,
    answer_score,
)
from bot.answer.scoring import CORRECT, MISSING, tally

THRESHOLDS = [round(0.30 + 0.01 * i, 2) for i in range(66)]
# Inverse strength of the logistic model's L2 penalty (scikit-learn's C). Leaving one set out, C=10 carried
# over better than 0.1 or 1 and as well as 100.
REGULARISATION = 10.0


def load(path: Path) -> list[dict]:
    """The scored records of one run (questions without key facts carry no verdict and are left out)."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["verdict"] is not None]


def answered(records: list[dict]) -> list[dict]:
    """Records above the confidence floor that were written and posted (the rule can still refuse them)."""
    return [
        r
        for r in records
        if not r["refused"] and r["confidence"] >= MIN_SCORED_CONFIDENCE and r["answerability"]
    ]


def features(record: dict) -> list[float]:
    return [record["confidence"], record["answerability"], record["support"]]


def verdict_at(record: dict, score, threshold: float) -> str:
    """The record's verdict had the chain refused below the confidence floor and this answer score."""
    if record["refused"]:
        return record["verdict"]
    if (
        record["confidence"] >= MIN_SCORED_CONFIDENCE
        and record["answerability"]
        and score(record) >= threshold
    ):
        return record["verdict"]
    return CORRECT if record["kind"] == "unanswerable" else MISSING


def figures(records: list[dict], score, threshold: float) -> dict:
    """Counts and score of one set under this rule."""
    return tally([verdict_at(r, score, threshold) for r in records])


def fit(sets: list[list[dict]]):
    """The logistic answer score fitted on these sets, and its threshold maximising their mean score."""
    rows = [r for records in sets for r in answered(records)]
    model = LogisticRegression(C=REGULARISATION).fit(
        np.array([features(r) for r in rows]), np.array([r["verdict"] == CORRECT for r in rows])
    )
    weights, intercept = tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0])

    def score(record: dict) -> float:
        return answer_score(*features(record), weights=weights, intercept=intercept)

    best = max(THRESHOLDS, key=lambda t: (sum(figures(s, score, t)["score"] for s in sets), -t))
    return weights, intercept, best, score


def report(label: str, sets: dict[str, list[dict]], score, threshold: float) -> None:
    print(f"\n{label}:")
    per_set = {name: figures(records, score, threshold) for name, records in sets.items()}
    for name, f in per_set.items():
        print(
            f"  {name:10s} n {f['n']:4d}  correct {f['correct']:4d}  missing {f['missing']:4d}  "
            f"wrong {f['wrong']:4d} ({f['wrong'] / f['n']:.0%})  score {f['score']:.3f}"
        )
    print(f"  mean {np.mean([f['score'] for f in per_set.values()]):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="answers-out files, one per dev set")
    args = parser.parse_args()
    sets = {path.stem.split(".")[0]: load(path) for path in args.runs}
    weights, intercept, threshold, score = fit(list(sets.values()))
    print(
        f"fitted on all sets: weights {tuple(round(w, 3) for w in weights)}, intercept {intercept:.3f}, "
        f"threshold {threshold:.2f}"
    )
    report("fitted on all sets", sets, score, threshold)

    def shipped(record: dict) -> float:
        return answer_score(*features(record), weights=ANSWER_SCORE_WEIGHTS, intercept=ANSWER_SCORE_INTERCEPT)

    report(f"shipped (threshold {MIN_ANSWER_SCORE})", sets, shipped, MIN_ANSWER_SCORE)
    report("confidence floor alone", sets, lambda record: 1.0, 0.0)
    print("\neach set scored by the rule fitted on the others:")
    for name, records in sets.items():
        others = [r for other, r in sets.items() if other != name]
        *_, held_threshold, held_score = fit(others)
        f = figures(records, held_score, held_threshold)
        print(f"  {name:10s} score {f['score']:.3f} (correct {f['correct']}, wrong {f['wrong']})")


if __name__ == "__main__":
    main()
