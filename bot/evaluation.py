"""Answer-level evaluation: refusal and answer rates, citation precision, and answer support."""

from __future__ import annotations

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


def summarise_answers(rows: list[tuple[dict, Answer]]) -> dict:
    """Figures over (question record, answer) pairs; per kind and overall."""
    by_kind: dict[str, dict] = {}
    for kind in sorted({q["kind"] for q, _ in rows}):
        subset = [(q, a) for q, a in rows if q["kind"] == kind]
        answerable = [(q, a) for q, a in subset if q["gold_doc_ids"]]
        answered = [(q, a) for q, a in answerable if not a.refused]
        figures: dict = {"n": len(subset)}
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
        "answer_rate": _rate([not a.refused for a in answerable]),
        "refusal_rate": _rate([a.refused for a in unanswerable]),
        "median_total_ms": round(sorted(totals)[len(totals) // 2], 1) if totals else None,
    }


async def answer_all(chain, questions: list[dict]) -> list[tuple[dict, Answer]]:
    """Answer every question through the chain (not journaled: evaluation is not traffic)."""
    rows = []
    for record in questions:
        answer = await chain.runnable.ainvoke({"question": Question(record["question"])})
        rows.append((record, answer))
    return rows
