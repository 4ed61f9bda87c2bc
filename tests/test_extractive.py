"""The extractive generator: answers come from the best-ranked document and cite what they quote."""

from __future__ import annotations

from conftest import CountingEmbeddings
from langchain_core.documents import Document

from bot.extractive import ExtractiveGenerator
from bot.grounding import ground


def _document(doc_id: str, text: str, rank: int, score: float) -> Document:
    return Document(page_content=text, metadata={"doc_id": doc_id, "rank": rank, "score": score})


def test_the_answer_quotes_the_best_ranked_document_even_when_a_runner_up_matches_the_wording():
    embeddings = CountingEmbeddings(size=32)
    question = "Refunds are sent back within ten days."
    documents = [
        _document("refunds", "Approved refunds reach the original card. Card refunds take a week.", 0, 0.80),
        _document("payouts", f"Payout timing differs. {question}", 1, 0.80),
    ]
    draft = ExtractiveGenerator(embeddings).compose(question, embeddings.embed_query(question), documents)
    assert [source.metadata["doc_id"] for source in draft.sources] == ["refunds"]
    assert question not in draft.text and "[1]" in draft.text and "[2]" not in draft.text


def test_the_answer_may_quote_a_runner_up_passage_of_the_best_document_and_stays_grounded():
    embeddings = CountingEmbeddings(size=32)
    question = "Monthly price — Starter: $12/month; Growth: $29/month."
    best = _document("plans", "Annual price — Starter: $120/year; Growth: $290/year.", 0, 0.80)
    best.metadata["more_passages"] = [question]
    draft = ExtractiveGenerator(embeddings).compose(question, embeddings.embed_query(question), [best])
    assert draft.text.startswith(f"{question} [1]")
    checked = ground(draft.text, draft.sources)
    assert checked.acceptable and "$29/month" in checked.text and checked.sources == [best]
