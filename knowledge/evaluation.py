"""Retrieval evaluation: hit@1, hit@5, MRR@10 per question kind, and abstention AUROC."""

from __future__ import annotations

import json
from pathlib import Path

from knowledge.base import KnowledgeBase
from knowledge.index import KEYWORD_WEIGHT, Hit

_REQUIRED = ("id", "question", "gold_doc_ids", "kind")


def load_questions(path: Path) -> list[dict]:
    """Read a questions JSONL file, naming the line and field of any problem."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            msg = f"{path}:{number}: not valid JSON ({error.msg})"
            raise ValueError(msg) from None
        missing = [field for field in _REQUIRED if field not in record]
        if missing:
            msg = f"{path}:{number}: missing field(s) {', '.join(missing)}"
            raise ValueError(msg)
        questions.append(record)
    if not questions:
        msg = f"{path} has no questions"
        raise ValueError(msg)
    return questions


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def _first_gold_rank(hits: list[Hit], gold: set[str]) -> int | None:
    return next((rank for rank, hit in enumerate(hits) if hit.chunk.doc_id in gold), None)


def _summary(ranks: list[int | None]) -> dict:
    n = len(ranks)
    return {
        "n": n,
        "hit@1": round(sum(r == 0 for r in ranks) / n, 4),
        "hit@5": round(sum(r is not None and r < 5 for r in ranks) / n, 4),
        "mrr@10": round(sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n, 4),
    }


async def evaluate_retrieval(
    kb: KnowledgeBase, questions: list[dict], *, mode: str = "hybrid", keyword_weight: float = KEYWORD_WEIGHT
) -> dict:
    """Search every question and score the ranking against its gold documents."""
    ranks_by_kind: dict[str, list[int | None]] = {}
    unanswerable_kinds: dict[str, int] = {}
    answerable_conf: dict[str, list[float]] = {}
    unanswerable_conf: list[float] = []
    for question in questions:
        retrieval = await kb.retrieve(question["question"], k=10, mode=mode, keyword_weight=keyword_weight)
        hits = retrieval.hits
        gold = set(question["gold_doc_ids"])
        if gold:
            ranks_by_kind.setdefault(question["kind"], []).append(_first_gold_rank(hits, gold))
            answerable_conf.setdefault(question["kind"], []).append(retrieval.confidence)
        else:
            unanswerable_kinds[question["kind"]] = unanswerable_kinds.get(question["kind"], 0) + 1
            unanswerable_conf.append(retrieval.confidence)
    by_kind = {kind: _summary(ranks) for kind, ranks in sorted(ranks_by_kind.items())}
    for kind, n in unanswerable_kinds.items():
        by_kind.setdefault(kind, {"n": n})
    all_ranks = [rank for ranks in ranks_by_kind.values() for rank in ranks]
    # Titles asked verbatim are trivially confident; judge abstention on the reworded questions when there are any.
    reworded = [c for kind, confs in answerable_conf.items() if kind != "verbatim" for c in confs]
    score = auroc(reworded or answerable_conf.get("verbatim", []), unanswerable_conf)
    return {
        "by_kind": by_kind,
        "overall": _summary(all_ranks) if all_ranks else {"n": 0},
        "abstention_auroc": round(score, 4) if score is not None else None,
        "n_questions": len(questions),
        "mode": mode,
        "keyword_weight": keyword_weight,
    }
