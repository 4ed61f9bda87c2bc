"""Tone quality on the held-out pairs: facts kept by the raw model, chrF tuned vs base, on-brand rate."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from measure import load_average, peak_rss_mb
from tone_options import add_tone_options, parse_tone_options, tone_rewriter

from bot.answer.text import facts, proper_names
from bot.voice.guard import check_rewrite, markers, mentions, menu_paths
from bot.voice.rewriter import ToneRewriter
from bot.voice.tuning import load_pairs

TARGETS = {"raw_fact_preservation_pct": 95.0, "chrf_gain": 10.0, "on_brand_pct": 80.0}
FACT_PROBLEMS = ("drops", "adds", "changes")
SENSE_PROBLEMS = ("loses", "invents")


def keeps_every_fact(original: str, rewrite: str) -> bool:
    """The guard's fact checks alone (facts, citations, names, code), without the length and refusal checks."""
    return not [p for p in check_rewrite(original, rewrite).problems if p.startswith(FACT_PROBLEMS)]


def keeps_facts_and_sense(original: str, rewrite: str, voice: frozenset[str] | None = None) -> bool:
    """The fact and sense checks: negations, limits ("most", "up to") and, given the `voice`, invented words."""
    problems = check_rewrite(original, rewrite, voice=voice).problems
    return not [p for p in problems if p.startswith(FACT_PROBLEMS + SENSE_PROBLEMS)]


def only_invents(problems: tuple[str, ...]) -> bool:
    """True when wording that neither the answer nor the brand voice has is all that failed the guard."""
    return bool(problems) and all(p.startswith("invents") for p in problems)


def fact_recall(original: str, rewrite: str) -> tuple[int, int]:
    """How many of the original's facts, markers, names and menu paths the rewrite kept, out of how many."""
    wanted = facts(original) | markers(original)
    kept = len(wanted & (facts(rewrite) | markers(rewrite)))
    names = proper_names(original) | menu_paths(original)
    return kept + sum(mentions(rewrite, n) for n in names), len(wanted) + len(names)


def style_classifier(train_pairs):
    """Bag-of-words logistic regression, trained to tell the plain answers from the on-brand ones."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = [p.input for p in train_pairs] + [p.output for p in train_pairs]
    labels = [0] * len(train_pairs) + [1] * len(train_pairs)
    classifier = make_pipeline(
        CountVectorizer(binary=True, ngram_range=(1, 2), min_df=2), LogisticRegression(C=1.0, max_iter=2000)
    )
    return classifier.fit(texts, labels)


def raw_outputs(rewriter: ToneRewriter, texts: list[str], label: str, quiet: bool) -> tuple[list[str], float]:
    """The model's raw reply to every text, and the mean seconds per reply."""
    outputs, started = [], time.perf_counter()
    for done, text in enumerate(texts, start=1):
        outputs.append(rewriter.generate(text).text)
        if not quiet:
            print(f"\r{label}: {done}/{len(texts)}", end="", file=sys.stderr, flush=True)
    if not quiet:
        print(file=sys.stderr)
    return outputs, (time.perf_counter() - started) / max(len(texts), 1)


def pct(count: float, total: int) -> float:
    return round(100 * float(count) / max(total, 1), 1)


def evaluate(args) -> dict:
    import sacrebleu

    pairs = load_pairs(args.pairs)
    train = [p for p in pairs if p.split == "train"]
    heldout = [p for p in pairs if p.split != "train"][: args.limit]
    inputs, references = [p.input for p in heldout], [p.output for p in heldout]
    tuned = tone_rewriter(args, args.adapter)
    tuned_out, tuned_s = raw_outputs(tuned, inputs, "tuned", args.json)
    backend = tuned.backend
    verdicts = [tuned.check(i, o) for i, o in zip(inputs, tuned_out, strict=True)]
    guard = [verdict.passed for verdict in verdicts]
    sense = [keeps_facts_and_sense(i, o, tuned.voice) for i, o in zip(inputs, tuned_out, strict=True)]
    del tuned
    base = tone_rewriter(args, None)
    base_out, base_s = raw_outputs(base, inputs, "base", args.json)
    classifier = style_classifier(train)
    on_brand = {
        name: pct(sum(classifier.predict(texts)), len(texts))
        for name, texts in [
            ("tuned", tuned_out),
            ("base", base_out),
            ("references", references),
            ("plain_inputs", inputs),
        ]
    }
    recall = [fact_recall(i, o) for i, o in zip(inputs, tuned_out, strict=True)]
    chrf = {
        name: round(sacrebleu.corpus_chrf(outputs, [references]).score, 2)
        for name, outputs in [("tuned", tuned_out), ("base", base_out), ("unchanged_input", inputs)]
    }
    result = {
        "heldout_pairs": len(heldout),
        "adapter": str(args.adapter),
        "backend": backend,
        "raw_fact_preservation_pct": pct(sum(map(keeps_every_fact, inputs, tuned_out)), len(inputs)),
        "raw_facts_and_sense_kept_pct": pct(sum(sense), len(inputs)),
        "raw_fact_recall_pct": pct(sum(k for k, _ in recall), sum(t for _, t in recall)),
        "base_raw_fact_preservation_pct": pct(sum(map(keeps_every_fact, inputs, base_out)), len(inputs)),
        "raw_guard_pass_pct": pct(sum(guard), len(guard)),
        "refused_only_for_invented_wording_pct": pct(
            sum(only_invents(v.problems) for v in verdicts), len(verdicts)
        ),
        "after_guard_fact_preservation_pct": 100.0,
        "chrf": chrf,
        "chrf_gain": round(chrf["tuned"] - chrf["base"], 2),
        "on_brand_pct": on_brand["tuned"],
        "on_brand_by_source_pct": on_brand,
        "classifier_heldout_accuracy_pct": pct(
            sum(classifier.predict(references)) + len(inputs) - sum(classifier.predict(inputs)),
            2 * len(inputs),
        ),
        "seconds_per_reply": {"tuned": round(tuned_s, 2), "base": round(base_s, 2)},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average": load_average(),
    }
    result["targets_met"] = {
        "raw_fact_preservation": result["raw_fact_preservation_pct"] >= TARGETS["raw_fact_preservation_pct"],
        "chrf_gain": result["chrf_gain"] >= TARGETS["chrf_gain"],
        "on_brand": result["on_brand_pct"] >= TARGETS["on_brand_pct"],
    }
    if args.outputs:
        rows = zip(heldout, tuned_out, base_out, guard, strict=True)
        Path(args.outputs).write_text(
            "".join(
                json.dumps(
                    {"id": p.id, "input": p.input, "reference": p.output, "tuned": t, "base": b, "guard": g}
                )
                + "\n"
                for p, t, b, g in rows
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_tone_options(parser, "JSONL pairs with a heldout split")
    parser.add_argument("--limit", type=int, default=None, help="only the first N held-out pairs")
    parser.add_argument(
        "--outputs", type=Path, default=None, help="also write every output to this JSONL file"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = parse_tone_options(parser)
    result = evaluate(args)
    if args.json:
        print(json.dumps(result))
        return
    print(f"Held-out pairs: {result['heldout_pairs']}  (adapter {result['adapter']}, {result['backend']})")
    print(
        f"Raw model output keeps every fact: {result['raw_fact_preservation_pct']}% tuned "
        f"(target ≥ {TARGETS['raw_fact_preservation_pct']}%), {result['base_raw_fact_preservation_pct']}% base; "
        f"facts kept {result['raw_fact_recall_pct']}%; facts and sense kept "
        f"{result['raw_facts_and_sense_kept_pct']}%; whole guard passes {result['raw_guard_pass_pct']}% "
        f"(refused only for invented wording: {result['refused_only_for_invented_wording_pct']}%)"
    )
    chrf = result["chrf"]
    print(
        f"chrF vs references: tuned {chrf['tuned']}, base {chrf['base']}, unchanged input "
        f"{chrf['unchanged_input']}  → gain {result['chrf_gain']} (target ≥ {TARGETS['chrf_gain']})"
    )
    print(
        f"On-brand (classifier, {result['classifier_heldout_accuracy_pct']}% accurate on held-out): "
        f"{json.dumps(result['on_brand_by_source_pct'])} (target tuned ≥ {TARGETS['on_brand_pct']}%)"
    )
    print(f"Seconds per reply: {result['seconds_per_reply']}; peak RSS {result['peak_rss_mb']} MB")
    print(f"Targets met: {result['targets_met']}")


if __name__ == "__main__":
    main()
