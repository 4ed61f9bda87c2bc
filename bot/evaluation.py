"""Answer-level evaluation: key-fact verdicts and score, refusal rates, citation precision, answer support."""

from __future__ import annotations

import time

from bot.answer.scoring import is_scored, tally, verdict
from bot.models import Answer, Question
from knowledge.index import tokenize

SUPPORT_RECALL = 0.5


def snippet_recall(snippet: str, answer_text: str) -> float:
    """Share of the reference snippet's words that the answer contains."""
    words = set(tokenize([snippet])[0])
    if not words:
        return 0.0
    return len(words & set(tokenize([answer_text])[0])) / len(words)


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def answer_record(question: dict, answer: Answer, ms: float) -> dict:
    """One line of `helpdesk eval --answers-out`: the answer exactly as posted, and its verdict."""
    return {
        "id": question["id"],
        "kind": question["kind"],
        "question": question["question"],
        "answer": answer.text,
        "refused": answer.refused,
        "citations": [c.doc_id for c in answer.citations],
        "ms": round(ms, 1),
        "confidence": round(answer.confidence, 4),
        "answerability": None if answer.answerability is None else round(answer.answerability, 4),
        "support": round(answer.support, 4),
        "verdict": verdict(question, answer.text, answer.refused) if is_scored(question) else None,
    }


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


def _verdicts(rows: list[tuple[dict, Answer]]) -> list[str]:
    return [verdict(q, a.text, a.refused) for q, a in rows if is_scored(q)]


def summarise_answers(rows: list[tuple[dict, Answer]]) -> dict:
    """Figures over (question record, answer) pairs; per kind and overall."""
    by_kind: dict[str, dict] = {}
    for kind in sorted({q["kind"] for q, _ in rows}):
        subset = [(q, a) for q, a in rows if q["kind"] == kind]
        answerable = [(q, a) for q, a in subset if q["gold_doc_ids"]]
        answered = [(q, a) for q, a in answerable if not a.refused]
        figures: dict = {"n": len(subset)}
        if any(is_scored(q) for q, _ in subset):
            figures["verdicts"] = tally(_verdicts(subset))
        if answerable:
            figures["answer_rate"] = _rate([not a.refused for _, a in answerable])
            precision = [
                sum(c.doc_id in q["gold_doc_ids"] for c in a.citations) / len(a.citations)
                for q, a in answered
                if a.citations
            ]
            figures["citation_precision"] = round(sum(precision) / len(precision), 4) if precision else None
            figures["top_citation_in_gold"] = _rate(
                [bool(a.citations) and a.citations[0].doc_id in q["gold_doc_ids"] for q, a in answered]
            )
            with_snippet = [(q, a) for q, a in answered if q.get("answer_snippet")]
            figures["answer_support"] = _rate(
                [snippet_recall(q["answer_snippet"], a.text) >= SUPPORT_RECALL for q, a in with_snippet]
            )
        else:
            figures["refusal_rate"] = _rate([a.refused for _, a in subset])
        by_kind[kind] = figures
    answerable = [a for q, a in rows if q["gold_doc_ids"]]
    unanswerable = [a for q, a in rows if not q["gold_doc_ids"]]
    totals = [a.timings_ms.get("total", 0.0) for _, a in rows]
    return {
        "by_kind": by_kind,
        "verdicts": tally(_verdicts(rows)),
        "answer_rate": _rate([not a.refused for a in answerable]),
        "refusal_rate": _rate([a.refused for a in unanswerable]),
        "median_total_ms": _percentile(totals, 0.5),
        "p95_total_ms": _percentile(totals, 0.95),
    }


async def answer_all(chain, questions: list[dict], on_answer=None) -> list[tuple[dict, Answer]]:
    """Answer every question through the chain (not journaled: evaluation is not traffic).

    `on_answer(record)` receives each answer's `answer_record` as soon as it is given.
    """
    rows = []
    for question in questions:
        started = time.perf_counter()
        answer = await chain.runnable.ainvoke({"question": Question(question["question"])})
        rows.append((question, answer))
        if on_answer is not None:
            on_answer(answer_record(question, answer, (time.perf_counter() - started) * 1000))
    return rows
