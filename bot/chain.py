"""The RAG chain (LCEL): condense → retrieve → refuse or generate → ground and cite."""

from __future__ import annotations

import time
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda

from bot.extractive import Draft, ExtractiveGenerator
from bot.followups import candidate_queries
from bot.generators import ChatModelGenerator
from bot.grounding import ground
from bot.models import Answer, Citation, Question
from bot.retriever import passages_of
from bot.safety import neutralise_mentions
from bot.text import split_sentences, strip_markers

SNIPPET_CHARS = 280


@dataclass(frozen=True)
class AnswerPolicy:
    """When to refuse: retrieval confidence and answer support below these mean "not in the knowledge base"."""

    min_confidence: float = 0.60
    min_support: float = 0.0
    refusal_sources: int = 3


def _elapsed(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _snippet(document: Document, answer_text: str) -> str:
    """The passage sentence the answer used, else the passage's opening."""
    answered = strip_markers(answer_text)
    for passage in passages_of(document):
        for sentence in split_sentences(passage):
            if len(sentence) > 20 and sentence[:60] in answered:
                return sentence[:SNIPPET_CHARS]
    text = " ".join(document.page_content.split())
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


def citations_for(documents: list[Document], answer_text: str) -> list[Citation]:
    """Numbered citations, in the order the answer's markers use them."""
    return [
        Citation(
            n=n,
            doc_id=d.metadata["doc_id"],
            title=d.metadata.get("title", d.metadata["doc_id"]),
            source=d.metadata.get("source", ""),
            heading=" > ".join(h for h in d.metadata.get("headings") or [] if h != d.metadata.get("title")),
            snippet=_snippet(d, answer_text),
            updated_at=d.metadata.get("updated_at"),
        )
        for n, d in enumerate(documents, start=1)
    ]


def refusal(documents: list[Document], policy: AnswerPolicy) -> tuple[str, list[Citation]]:
    """An honest "not found" that points at the closest sources."""
    closest = _distinct_documents(documents)[: policy.refusal_sources]
    text = "I couldn't find an answer to this in the knowledge base."
    if closest:
        titles = "; ".join(
            f"{d.metadata.get('title', d.metadata['doc_id'])} [{n}]" for n, d in enumerate(closest, 1)
        )
        text += f" These might help: {titles}."
    return text, citations_for(closest, "")


def _distinct_documents(documents: list[Document]) -> list[Document]:
    seen, distinct = set(), []
    for document in documents:
        if document.metadata["doc_id"] not in seen:
            seen.add(document.metadata["doc_id"])
            distinct.append(document)
    return distinct


class RagChain:
    """Holds the chain's parts; `runnable` is the LCEL pipeline taking {"question": Question}."""

    def __init__(
        self,
        retriever,
        extractive: ExtractiveGenerator,
        generator: ChatModelGenerator | None,
        embed_query,
        policy: AnswerPolicy,
        tone=None,
    ):
        """`tone` (a ToneRewriter, optional) restyles the final answer; its fact guard keeps every fact."""
        self.retriever = retriever
        self.tone = tone
        self.extractive = extractive
        self.generator = generator
        self.embed_query = embed_query
        self.policy = policy
        self.runnable: Runnable = RunnableLambda(self._retrieve) | RunnableLambda(self._respond)

    async def _retrieve(self, state: dict) -> dict:
        """Retrieve for the question and, in a conversation, for its follow-up reading; keep the surer one."""
        started = time.perf_counter()
        queries = candidate_queries(state["question"])
        results = await self.retriever.abatch(queries)
        confidences = [docs[0].metadata["retrieval_confidence"] if docs else 0.0 for docs in results]
        best = max(range(len(queries)), key=lambda i: (confidences[i], -i))
        return {**state, "query": queries[best], "documents": results[best], "started": started}

    async def _draft(self, state: dict, documents: list[Document]) -> tuple[Draft, dict]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        query_vector = await self.embed_query(state["query"])
        extractive = await self.extractive.acompose(state["query"], query_vector, documents)
        if self.generator is None:
            timings["generate"] = _elapsed(started)
            return extractive, timings
        started = time.perf_counter()
        draft = await self.generator.acompose(state["question"].text, documents, state.get("on_delta"))
        timings["generate"] = _elapsed(started)
        if draft.not_in_context:
            return draft, timings
        checked = ground(draft.text, draft.sources)
        if not checked.acceptable:
            return extractive, timings
        return Draft(checked.text, checked.sources, draft.support, draft.generator), timings

    async def _respond(self, state: dict) -> Answer:
        documents: list[Document] = state["documents"]
        retrieved_at = time.perf_counter()
        timings = {"retrieve": (retrieved_at - state["started"]) * 1000}
        confidence = documents[0].metadata["retrieval_confidence"] if documents else 0.0
        question: Question = state["question"]
        answer = Answer("", [], True, confidence, question=question.text, standalone_query=state["query"])
        draft = None
        if confidence >= self.policy.min_confidence:
            draft, generate_timings = await self._draft(state, documents)
            timings.update(generate_timings)
        if draft is not None:
            answer.support = draft.support
        if draft is None or draft.not_in_context or draft.support < self.policy.min_support:
            answer.text, answer.citations = refusal(documents, self.policy)
        else:
            checked = ground(draft.text, draft.sources)
            answer.text = checked.text
            answer.citations = citations_for(checked.sources, checked.text)
            answer.refused = not checked.acceptable
            answer.generator = draft.generator
            if answer.refused:
                answer.text, answer.citations = refusal(documents, self.policy)
        if self.tone is not None:
            started = time.perf_counter()
            rewrite = await self.tone.rewrite(answer.text)
            answer.text = rewrite.output
            timings["tone"] = _elapsed(started)
        answer.text = neutralise_mentions(answer.text)
        timings["total"] = _elapsed(state["started"])
        answer.timings_ms = timings
        return answer
