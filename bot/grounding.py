"""The grounding check run before anything is posted: every sentence must be backed by what it cites."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from langchain_core.documents import Document

from bot.retriever import passages_of
from bot.text import MARKER, facts, normalise, paragraphs, proper_names, split_sentences, strip_markers
from knowledge.index import tokenize

# Share of a sentence's content words that must occur in the passages it cites.
MIN_WORD_SUPPORT = 0.5
# Below this share of surviving sentences, the answer is replaced by the extractive one.
MIN_KEPT_SHARE = 0.5


@dataclass
class Grounded:
    """A checked answer: the surviving text renumbered, its sources, and what was removed and why."""

    text: str
    sources: list[Document]
    kept: int
    dropped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        """Enough of the answer survived to post it."""
        total = self.kept + len(self.dropped)
        return self.kept > 0 and self.kept / total >= MIN_KEPT_SHARE


def _statements(text: str) -> list[tuple[str, list[int]]]:
    """Sentences (a list stays with its intro line) with the markers that cover them.

    A sentence without markers is covered by the next marked sentence of its paragraph, as in
    "Refunds take two days. They go to your card [1]."
    """
    statements: list[tuple[str, list[int]]] = []
    for block in paragraphs(text.strip()):
        sentences = [block.strip()] if "\n" in block.strip() else split_sentences(block)
        pending: list[str] = []
        for sentence in filter(str.strip, sentences):
            markers = [int(n) for n in MARKER.findall(sentence)]
            if not markers:
                pending.append(sentence)
                continue
            statements.extend((earlier, markers) for earlier in pending)
            statements.append((sentence, markers))
            pending = []
        statements.extend((sentence, []) for sentence in pending)
    return statements


def _unsupported_reason(statement: str, cited_text: str) -> str | None:
    plain_source = normalise(cited_text)
    for fact in facts(statement):
        if normalise(fact) not in plain_source:
            return f"'{fact}' does not occur in the cited source"
    for name in proper_names(statement):
        if name not in plain_source:
            return f"the name '{name}' does not occur in the cited source"
    words = set(tokenize([strip_markers(statement)])[0])
    if words:
        source_words = set(tokenize([cited_text])[0])
        support = len(words & source_words) / len(words)
        if support < MIN_WORD_SUPPORT:
            return f"only {support:.0%} of its words occur in the cited source"
    return None


def _before_final_stop(sentence: str, markers: str) -> str:
    """The sentence with its citation markers before its closing full stop: "Refunds take 14 days [1]."."""
    body = sentence.rstrip(".!?")
    return f"{body}{markers}{sentence[len(body) :]}"


def ground(text: str, sources: list[Document]) -> Grounded:
    """Keep the sentences whose cited sources support them; drop dangling markers; renumber citations."""
    kept_parts: list[tuple[str, list[int]]] = []
    dropped: list[tuple[str, str]] = []
    for statement, cited in _statements(text):
        valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(sources)]
        if not valid:
            dropped.append((statement, "cites no existing source"))
            continue
        cited_text = "\n".join(
            "\n".join([sources[n - 1].metadata.get("title", ""), *passages_of(sources[n - 1])]) for n in valid
        )
        reason = _unsupported_reason(statement, cited_text)
        if reason:
            dropped.append((statement, reason))
            continue
        kept_parts.append((strip_markers(statement).rstrip(), valid))
    order: dict[int, int] = {}
    for _, valid in kept_parts:
        for n in valid:
            order.setdefault(n, len(order) + 1)
    rendered = []
    for body, valid in kept_parts:
        markers = "".join(f" [{order[n]}]" for n in valid)
        if "\n" in body:
            rendered.append(f"\n\n{body}{markers}\n\n")
        else:
            rendered.append(f"{_before_final_stop(body, markers)} ")
    final = re.sub(r"\n{3,}", "\n\n", "".join(rendered)).strip()
    renumbered = [sources[n - 1] for n in sorted(order, key=order.get)]
    return Grounded(final, renumbered, len(kept_parts), dropped)
