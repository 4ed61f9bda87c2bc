"""The embedded default generator: compose a short cited answer from the most relevant sentences."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from bot.answer.text import answer_units
from bot.retriever import announced_passage, more_passages, whole_text
from bot.safety import gives_orders_to_an_assistant
from knowledge.index import announces_what_follows, tokenize

# Passages considered, answer units read per passage, and units kept in an answer. The answer comes from
# the best-ranked document: a runner-up's sentence that matches the wording better is more often from a
# neighbouring topic than the answer.
PASSAGES = 1
UNITS_PER_PASSAGE = 10
MAX_UNITS = 3
MAX_WORDS = 110
# A unit joins the lead only when it scores nearly as well, and is not a near-repeat of one already kept.
FOLLOWER_MARGIN = 0.08
DUPLICATE_SIMILARITY = 0.88
# A unit's score: cosine with the question, plus a share of the question's words it contains, minus a
# penalty per retrieval rank of its passage, plus a little for opening its passage.
KEYWORD_BONUS = 0.15
RANK_PENALTY = 0.06
OPENING_BONUS = 0.02


@dataclass
class Draft:
    """A composed answer before grounding: text with [n] markers into `sources`, and how well it matched."""

    text: str
    sources: list[Document]
    support: float
    generator: str
    not_in_context: bool = False
    # The part of the text the writer found answering, when the rest only gives its context (None: all).
    answering: str | None = None


def _keyword_overlap(query_tokens: set[str], unit: str) -> float:
    if not query_tokens:
        return 0.0
    return len(query_tokens & set(tokenize([unit])[0])) / len(query_tokens)


def _names(pointer: Document, document: Document) -> bool:
    """True when retrieval brought `document` up because the see-also entry `pointer` names it."""
    named_by = document.metadata.get("named_by")
    return named_by is not None and named_by == pointer.metadata.get("doc_key")


def _passages_read(document: Document) -> list[list[str]]:
    """The answer units of each passage of a document; what the best passage announces ends it.

    "Here's how to get back into your account." answers together with the steps that follow it, which are
    not read on their own: a sentence further on in that passage seldom answers without them.
    """
    announced = announced_passage(document)
    units = answer_units(document.page_content)
    if announced and units and announces_what_follows(units[-1]):
        # Passages overlap a little: what the best one already says is not what it announces.
        what = next((unit for unit in answer_units(announced) if unit not in document.page_content), None)
        if what is not None and what.startswith(units[-1]):
            units[-1] = what  # the announcing line again, now with what it announces
        elif what is not None:
            separator = "\n" if "\n" in what else " "  # a list or code block starts on a line of its own
            units[-1] = f"{units[-1]}{separator}{what}"
    return [units, *map(answer_units, more_passages(document))]


def _considered(documents: list[Document], read: int) -> list[tuple[int, Document]]:
    """(rank, document) for the first `read` documents and the documents they name as see-also."""
    best = documents[:read]
    return [
        (rank, document)
        for rank, document in enumerate(documents)
        if rank < read or any(_names(pointer, document) for pointer in best)
    ]


def _restates(unit: str) -> bool:
    """True for a question (it restates, it does not answer), or for orders planted for an assistant."""
    return unit.rstrip("*_ ").endswith("?") or gives_orders_to_an_assistant(unit)


def completed(unit: str, whole_units: list[str]) -> str:
    """The unit as the whole document words it: a passage may end before the code or list a sentence announces."""
    return next((whole for whole in whole_units if whole != unit and whole.startswith(unit)), unit)


def candidate_units(
    documents: list[Document], read: int = PASSAGES, *, whole: bool = False
) -> list[tuple[int, int, str]]:
    """(rank, position, unit) for the units of each read document's best passage and of its next best ones.

    With `whole`, a short document's other units follow them, in reading order. Besides the first `read`
    documents, the documents they name as see-also (they only point there) are read.
    """
    candidates = []
    for rank, document in _considered(documents, read):
        units = [
            unit
            for passage in _passages_read(document)
            for unit in passage[:UNITS_PER_PASSAGE]
            if not _restates(unit)
        ]
        text = whole_text(document) if whole else None
        if text is not None:
            whole_units = [unit for unit in answer_units(text) if not _restates(unit)]
            units = list(dict.fromkeys(completed(unit, whole_units) for unit in units))
            read_already = "\n".join(units)
            units += [unit for unit in whole_units if unit not in read_already]
        candidates.extend((rank, position, unit) for position, unit in enumerate(units))
    return candidates


def cite(units: list[tuple[int, str]], documents: list[Document], support: float, name: str) -> Draft:
    """A draft quoting (rank, unit) pieces in the given order, each cited with its document's number."""
    sources: list[Document] = []
    numbers: dict[int, int] = {}
    parts = []
    for rank, unit in units:
        if rank not in numbers:
            sources.append(documents[rank])
            numbers[rank] = len(sources)
        parts.append(f"{unit} [{numbers[rank]}]")
    text = ""
    for part in parts:
        separator = "\n\n" if text and ("\n" in part or "\n" in text.split("\n\n")[-1]) else " "
        text = f"{text}{separator}{part}" if text else part
    return Draft(text, sources, support, name)


class ExtractiveGenerator:
    """Picks the sentence that best answers the question, adds close ones from the same source, cites each."""

    name = "extractive"

    def __init__(self, embeddings: Embeddings, embed_query=None):
        """`embed_query` (async, optional) is the knowledge base's cached query embedding."""
        self.embeddings = embeddings
        self.embed_query = embed_query

    def compose(self, query: str, query_vector: list[float], documents: list[Document]) -> Draft:
        """Compose synchronously (CPU work: call it off the event loop)."""
        candidates = candidate_units(documents)
        if not candidates:
            return Draft("", [], 0.0, self.name, not_in_context=True)
        vectors = np.asarray(
            self.embeddings.embed_documents([unit for _, _, unit in candidates]), dtype=np.float32
        )
        similarity = vectors @ np.asarray(query_vector, dtype=np.float32)
        query_tokens = set(tokenize([query])[0])
        scores = [
            float(similarity[i])
            + KEYWORD_BONUS * _keyword_overlap(query_tokens, unit)
            - RANK_PENALTY * rank
            + (OPENING_BONUS if pos == 0 else 0)
            for i, (rank, pos, unit) in enumerate(candidates)
        ]
        order = sorted(range(len(candidates)), key=lambda i: scores[i], reverse=True)
        lead = order[0]
        chosen = [lead]
        words = len(candidates[lead][2].split())
        for i in order[1:]:
            if len(chosen) == MAX_UNITS or scores[i] < scores[lead] - FOLLOWER_MARGIN:
                break
            if candidates[i][0] != candidates[lead][0] or words + len(candidates[i][2].split()) > MAX_WORDS:
                continue
            if max(float(vectors[i] @ vectors[j]) for j in chosen) > DUPLICATE_SIMILARITY:
                continue
            chosen.append(i)
            words += len(candidates[i][2].split())
        # A see-also entry answers only together with the document it sends the reader to.
        named = [i for i in order if _names(documents[candidates[lead][0]], documents[candidates[i][0]])]
        if named and not any(candidates[i][0] == candidates[named[0]][0] for i in chosen):
            chosen = [*chosen[: MAX_UNITS - 1], named[0]]
        # Lead first; the others in reading order of their documents.
        ordered = [lead, *sorted(chosen[1:], key=lambda i: candidates[i][:2])]
        chosen_units = [(candidates[i][0], candidates[i][2]) for i in ordered]
        return cite(chosen_units, documents, float(similarity[lead]), self.name)

    async def acompose(self, question: str, query: str, documents: list[Document], on_delta=None) -> Draft:
        """Compose for the standalone query, off the event loop (nothing streams: the answer is quoted)."""
        if self.embed_query is not None:
            query_vector = await self.embed_query(query)
        else:
            query_vector = await asyncio.to_thread(self.embeddings.embed_query, query)
        return await asyncio.to_thread(self.compose, query, query_vector, documents)
