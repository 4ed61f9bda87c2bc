"""The knowledge base as a LangChain retriever: Documents carrying ids, titles, sources and confidence."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from knowledge.base import KnowledgeBase
from knowledge.chunking import CODE_CLOSED, CODE_REOPENED
from knowledge.index import KEYWORD_WEIGHT


class KnowledgeRetriever(BaseRetriever):
    """Hybrid retrieval over the served index; each Document's metadata has the retrieval confidence."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_base: Any
    k: int = 5
    mode: str = "hybrid"
    keyword_weight: float = KEYWORD_WEIGHT

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        msg = "KnowledgeRetriever is async only: use ainvoke"
        raise NotImplementedError(msg)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        kb: KnowledgeBase = self.knowledge_base
        retrieval = await kb.retrieve(query, k=self.k, mode=self.mode, keyword_weight=self.keyword_weight)
        documents = []
        for rank, hit in enumerate(retrieval.hits):
            chunk = hit.chunk
            metadata = {
                **chunk.to_metadata(),
                "rank": rank,
                "score": hit.score,
                "similarity": hit.dense,
                "retrieval_confidence": retrieval.confidence,
                "more_passages": [more.text for more in hit.more],
                "announced_passage": hit.announced.text if hit.announced else None,
                "named_by": hit.named_by,
                "whole": [passage.text for passage in hit.whole],
            }
            documents.append(Document(page_content=chunk.text, metadata=metadata))
        return documents


# Neighbouring passages share up to the chunker's overlap; a shared run shorter than this is a coincidence.
MAX_OVERLAP_CHARS = 2000
MIN_OVERLAP_CHARS = 20


def passages_of(document: Document) -> list[str]:
    """A retrieved document's best passage, the next best ones, the one it announces, and (short) the others."""
    more = more_passages(document)
    announced = announced_passage(document)
    handed_on = [
        document.page_content,
        *more,
        *([announced] if announced else []),
        *whole_passages(document),
    ]
    return list(dict.fromkeys(handed_on))


def whole_passages(document: Document) -> list[str]:
    """All a short document's passages in reading order, as retrieval handed them on (else empty)."""
    return list(document.metadata.get("whole", ()))


def whole_text(document: Document) -> str | None:
    """A short document as one text: its passages in reading order, each overlap with the previous once.

    A code block cut between two passages (each fenced again at the cut) is joined back into one.
    """
    text = None
    for passage in whole_passages(document):
        if text is None:
            text = passage
            continue
        if text.endswith(CODE_CLOSED) and passage.startswith(CODE_REOPENED):
            inner = _after_overlap(text[: -len(CODE_CLOSED)], passage[len(CODE_REOPENED) :])
            if not inner.startswith("\n\n"):
                text = text[: -len(CODE_CLOSED)] + inner
                continue
        text += _after_overlap(text, passage)
    return text


def _after_overlap(text: str, passage: str) -> str:
    """What `passage` adds after `text`: the passage without the start it shares with `text`'s end."""
    longest = min(len(text), len(passage), MAX_OVERLAP_CHARS)
    shared = next((size for size in range(longest, 0, -1) if text.endswith(passage[:size])), 0)
    if shared < MIN_OVERLAP_CHARS:
        return "\n\n" + passage
    return passage[shared:]


def more_passages(document: Document) -> list[str]:
    """The document's next best passages for the query, which retrieval handed on with the best one."""
    return list(document.metadata.get("more_passages", ()))


def announced_passage(document: Document) -> str | None:
    """The passage after the best one, when the best one ends by announcing it ("Here's how to reset it.")."""
    return document.metadata.get("announced_passage")
