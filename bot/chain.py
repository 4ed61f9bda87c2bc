"""The RAG chain (LCEL), one named step each: retrieve → decide → write → ground → voice."""

import time
from dataclasses import dataclass, field

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from typing_extensions import TypedDict

from bot.answer.asked import states_what_is_asked
from bot.answer.decide import AnswerPolicy, Decision, answer_score, decide
from bot.answer.extractive import Draft
from bot.answer.generators import DeltaCallback
from bot.answer.grounding import Grounded, ground
from bot.answer.text import split_sentences, strip_markers
from bot.followups import candidate_queries
from bot.models import Answer, Citation, Question
from bot.retriever import passages_of
from bot.safety import neutralise_mentions

SNIPPET_CHARS = 280


@dataclass
class Retrieved:
    """What retrieval found for the question (or its standalone reading), and how sure it is."""

    query: str
    documents: list[Document]
    confidence: float
    started: float
    timings_ms: dict[str, float] = field(default_factory=dict)


class AnswerState(TypedDict, total=False):
    """The state that grows from step to step; each step adds one named field."""

    question: Question
    on_delta: DeltaCallback | None
    retrieved: Retrieved
    decision: Decision
    draft: Draft | None
    grounded: Grounded | None


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
    """Holds the chain's parts; `runnable` is the LCEL pipeline taking {"question": Question}.

    `writer` composes the answer (extractive, or a chat model); `judge` (optional) tells how likely the
    passages answer the question; `tone` (optional) restyles the final answer behind its fact guard.
    """

    def __init__(self, retriever, writer, policy: AnswerPolicy, judge=None, tone=None):
        self.retriever = retriever
        self.writer = writer
        self.judge = judge
        self.policy = policy
        self.tone = tone
        self.runnable: Runnable = (
            RunnablePassthrough.assign(retrieved=RunnableLambda(self._retrieve, name="retrieve"))
            | RunnablePassthrough.assign(decision=RunnableLambda(self._decide, name="decide"))
            | RunnablePassthrough.assign(draft=RunnableLambda(self._write, name="write"))
            | RunnablePassthrough.assign(grounded=RunnableLambda(self._ground, name="ground"))
            | RunnableLambda(self._voice, name="voice")
        )

    async def _retrieve(self, state: AnswerState) -> Retrieved:
        """Retrieve for the question and, in a conversation, for its follow-up reading; keep the surer one."""
        started = time.perf_counter()
        queries = candidate_queries(state["question"])
        results = await self.retriever.abatch(queries)
        confidences = [docs[0].metadata["retrieval_confidence"] if docs else 0.0 for docs in results]
        best = max(range(len(queries)), key=lambda i: (confidences[i], -i))
        retrieved = Retrieved(queries[best], results[best], confidences[best], started)
        retrieved.timings_ms["retrieve"] = _elapsed(started)
        return retrieved

    async def _decide(self, state: AnswerState) -> Decision:
        """Answer or refuse, from the retrieval confidence and the judge's reading of the passages."""
        retrieved = state["retrieved"]
        started = time.perf_counter()
        decision = await decide(
            state["question"].text, retrieved.query, retrieved.documents, retrieved.confidence,
            self.policy, self.judge,
        )  # fmt: skip
        retrieved.timings_ms["decide"] = _elapsed(started)
        return decision

    async def _write(self, state: AnswerState) -> Draft | None:
        """The writer's cited draft, when the decision is to answer."""
        if not state["decision"].answer:
            return None
        retrieved = state["retrieved"]
        started = time.perf_counter()
        draft = await self.writer.acompose(
            state["question"].text, retrieved.query, retrieved.documents, state.get("on_delta")
        )
        retrieved.timings_ms["generate"] = _elapsed(started)
        return draft

    async def _ground(self, state: AnswerState) -> Grounded | None:
        """Keep only the sentences their cited passages back; None when nothing worth posting is left.

        A draft whose answer score (now that its support is known) is below the threshold is not posted.

        An answer without the kind of fact asked for (no amount for "how long…?") is not worth posting, nor
        one whose answering part lacks it: an amount in the context that follows is seldom the one asked for.
        """
        draft = state["draft"]
        if draft is None or draft.not_in_context or draft.support < self.policy.min_support:
            return None
        answerability = state["decision"].answerability
        if answerability is not None:
            score = answer_score(state["retrieved"].confidence, answerability, draft.support)
            if score < self.policy.min_answer_score:
                return None
        checked = ground(draft.text, draft.sources)
        question = state["question"].text
        if not checked.acceptable or not states_what_is_asked(question, checked.text):
            return None
        if draft.answering is not None and not states_what_is_asked(question, draft.answering):
            return None
        return checked

    async def _voice(self, state: AnswerState) -> Answer:
        """The answer (or refusal) in the brand voice, as it will be posted."""
        retrieved, grounded, draft = state["retrieved"], state["grounded"], state["draft"]
        question: Question = state["question"]
        answer = Answer(
            "", [], True, retrieved.confidence, question=question.text, standalone_query=retrieved.query
        )
        answer.answerability = state["decision"].answerability
        if draft is not None:
            answer.support = draft.support
            answer.generator = draft.generator
        if grounded is None:
            answer.text, answer.citations = refusal(retrieved.documents, self.policy)
        else:
            answer.refused = False
            answer.text = grounded.text
            answer.citations = citations_for(grounded.sources, grounded.text)
        timings = retrieved.timings_ms
        if self.tone is not None:
            started = time.perf_counter()
            rewrite = await self.tone.rewrite(answer.text)
            answer.text = rewrite.output
            timings["tone"] = _elapsed(started)
        answer.text = neutralise_mentions(answer.text)
        timings["total"] = _elapsed(retrieved.started)
        answer.timings_ms = timings
        return answer
