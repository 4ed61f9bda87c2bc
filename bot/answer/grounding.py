"""The grounding check run before anything is posted: every sentence must be backed by what it cites."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from langchain_core.documents import Document

from bot.answer.text import (
    FENCE,
    LIST_ITEM,
    MARKER,
    facts,
    label_form,
    labels,
    normalise,
    paragraphs,
    proper_names,
    split_sentences,
    strip_markers,
)
from bot.retriever import passages_of
from knowledge.index import tokenize

# Share of a sentence's content words that must occur in the passages it cites.
MIN_WORD_SUPPORT = 0.5
# What a finished sentence or list item ends with (a closing quote, bracket or code span included).
_ENDINGS = ".!?:;)]`\"'*_"
# The first item of a numbered list.
_FIRST_ITEM = re.compile(r"^\s*1[.)]\s")
# Below this share of surviving sentences, the answer is not posted and the bot refuses.
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


def _lines(block: str) -> list[str]:
    """A list block's lines, each item with its continuation lines (a marker alone on a line included)."""
    lines: list[str] = []
    for line in block.strip().splitlines():
        continues = not LIST_ITEM.match(line) and (
            line.startswith((" ", "\t")) or not strip_markers(line).strip()
        )
        if lines and continues:
            lines[-1] = f"{lines[-1]} {line.strip()}"
        elif line.strip():
            lines.append(line.rstrip())
    return lines


def _statements(text: str) -> list[tuple[str, list[int], bool]]:
    """Sentences, list lines and code blocks, with the markers that cover them and whether each is a line.

    A sentence without markers is covered by the next marked sentence of its paragraph, as in
    "Refunds take two days. They go to your card [1]." Each line of a list is checked on its own, so one
    invented step does not cost the others.
    """
    statements: list[tuple[str, list[int], bool]] = []
    for block in paragraphs(text.strip()):
        if FENCE.match(block):
            statements.append((block.strip(), [int(n) for n in MARKER.findall(block)], True))
            continue
        if "\n" in block.strip():
            statements.extend((line, [int(n) for n in MARKER.findall(line)], True) for line in _lines(block))
            continue
        pending: list[str] = []
        for sentence in filter(str.strip, split_sentences(block)):
            markers = [int(n) for n in MARKER.findall(sentence)]
            if not markers:
                pending.append(sentence)
                continue
            statements.extend((earlier, markers, False) for earlier in pending)
            statements.append((sentence, markers, False))
            pending = []
        statements.extend((sentence, [], False) for sentence in pending)
    return statements


def _unsupported_reason(statement: str, cited_text: str) -> str | None:
    """Why the cited text does not back the statement (the first problem in reading order), or None."""
    statement = LIST_ITEM.sub("", statement)  # a step's number is the answer's own layout, not a fact
    plain_source = normalise(cited_text)
    for fact in sorted(facts(statement), key=statement.find):
        if normalise(fact) not in plain_source:
            return f"'{fact}' does not occur in the cited source"
    for name in sorted(proper_names(statement), key=statement.find):
        if name not in plain_source:
            return f"the name '{name}' does not occur in the cited source"
    source_labels = label_form(cited_text)
    for label in sorted(labels(statement), key=statement.find):
        if label_form(label) not in source_labels:
            return f"the label or menu path '{label}' does not occur in the cited source"
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


def _source_text(source: Document) -> str:
    return "\n".join([source.metadata.get("title", ""), *passages_of(source)])


def _attribute(statement: str, sources: list[Document]) -> tuple[list[int], str | None]:
    """The source that supports an uncited statement best (most of its words), or why none does."""
    words = set(tokenize([statement])[0])
    ranked = sorted(
        range(len(sources)),
        key=lambda i: -len(words & set(tokenize([_source_text(sources[i])])[0])),
    )
    reasons = []
    for i in ranked:
        reason = _unsupported_reason(statement, _source_text(sources[i]))
        if reason is None:
            return [i + 1], None
        reasons.append(reason)
    return [], f"no source supports it ({reasons[0]})" if reasons else "cites no existing source"


def complete_part(text: str) -> str:
    """The text without a last sentence or list item that was cut off (a reply stopped at its length limit)."""
    text = text.rstrip()
    if not text or text[-1] in _ENDINGS or MARKER.search(text[-6:]) or text.count("```") % 2:
        return text
    lines = text.split("\n")
    if LIST_ITEM.match(lines[-1]) or (len(lines) > 1 and not split_sentences(lines[-1])[:-1]):
        return "\n".join(lines[:-1]).rstrip()
    sentences = split_sentences(lines[-1])
    lines[-1] = " ".join(sentences[:-1])
    return "\n".join(lines).rstrip()


def _new_list(previous: tuple[str, list[int], bool] | None, body: str) -> bool:
    """True when `body` numbers a list afresh right after an item of another list ("3. …" then "1. …")."""
    return (
        previous is not None
        and previous[2]
        and bool(LIST_ITEM.match(previous[0]))
        and bool(_FIRST_ITEM.match(body))
    )


def _render(parts: list[tuple[str, list[int], bool]], order: dict[int, int]) -> str:
    """Sentences run on; list lines and code blocks stand on their own lines, a run of lines citing the
    same sources carrying its markers once, at its end. Two lists quoted one after the other stay apart."""
    rendered = ""
    for i, (body, valid, is_line) in enumerate(parts):
        markers = "".join(f" [{order[n]}]" for n in valid)
        previous = parts[i - 1] if i else None
        following = parts[i + 1] if i + 1 < len(parts) else None
        if not is_line:
            piece = _before_final_stop(body, markers)
            rendered += ("\n\n" if rendered.endswith("\n") or (i and parts[i - 1][2]) else " ") + piece
            continue
        same_run = (
            following is not None
            and following[2]
            and following[1] == valid
            and "```" not in body
            and not _new_list(parts[i], following[0])
        )
        if FENCE.match(body):
            # A marker after a closing fence would leave the code block open: the sentence that introduces
            # the code carries the citation, or a line of its own after the block when it cites elsewhere.
            cited_before = previous is not None and previous[1] == valid
            piece = body if cited_before or not markers else f"{body}\n{markers.strip()}"
        else:
            piece = body if same_run else f"{body}{markers}"
        previous_is_line = (
            previous is not None and previous[2] and "```" not in body and "```" not in previous[0]
        )
        run_on = previous_is_line and not _new_list(previous, body)
        rendered += ("\n" if run_on else "\n\n") + piece
    return rendered.strip()


def ground(text: str, sources: list[Document]) -> Grounded:
    """Keep the sentences their sources support; an uncited one is attributed to the source that backs it.

    A sentence whose markers all point nowhere is dropped; the citations are renumbered in reading order.
    """
    kept_parts: list[tuple[str, list[int]]] = []
    dropped: list[tuple[str, str]] = []
    for statement, cited, is_line in _statements(complete_part(text)):
        valid = [n for n in dict.fromkeys(cited) if 1 <= n <= len(sources)]
        if not valid:  # uncited, or citing a source that does not exist: find the one that backs it
            valid, reason = _attribute(strip_markers(statement), sources)
        else:
            reason = _unsupported_reason(statement, "\n".join(_source_text(sources[n - 1]) for n in valid))
        if reason:
            dropped.append((statement, reason))
            continue
        kept_parts.append((strip_markers(statement).rstrip(), valid, is_line))
    order: dict[int, int] = {}
    for _, valid, _ in kept_parts:
        for n in valid:
            order.setdefault(n, len(order) + 1)
    final = _render(kept_parts, order)
    renumbered = [sources[n - 1] for n in sorted(order, key=order.get)]
    return Grounded(final, renumbered, len(kept_parts), dropped)
