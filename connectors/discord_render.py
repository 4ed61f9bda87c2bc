"""Answers as Discord markdown: [n] markers, linked sources with their age, messages of ≤ 2,000 characters."""

from __future__ import annotations

import re
from datetime import datetime

from bot.formatting import is_link, updated_ago
from bot.models import Answer, Citation
from bot.safety import neutralise_mentions

MESSAGE_LIMIT = 2000

# Spans a message must never be cut inside: fenced code (an unclosed fence runs to the end), inline code,
# masked links `[title](<url>)` / `[title](url)`, and bare or angle-bracketed URLs.
_PROTECTED = re.compile(
    r"```.*?(?:```|\Z)"
    r"|`[^`\n]+`"
    r"|\[(?:\\.|[^\[\]\n\\])*\]\((?:<[^>\n]*>|[^)\s]*)\)"
    r"|<?https?://[^\s>]+>?",
    re.DOTALL,
)
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)

# Where a message may end, best first: after a blank line, a line, a sentence, a word.
_BOUNDARIES = (
    re.compile(r"\n(?:[ \t]*\n)+"),
    re.compile(r"\n"),
    re.compile(r"[.!?…][)\]\"'*_]*[ \t]+"),
    re.compile(r"[ \t]+"),
)
_MARKDOWN_SPECIAL = re.compile(r"([\\*_~|`\[\]])")
# A masked link `[text](url)` in answer text: its words could pass for any address, so the address is shown.
_MASKED_LINK = re.compile(r"\[([^\[\]\n]+)\]\(\s*<?(https?://[^\s<>()]+)>?\s*\)")


def render(answer: Answer, now: datetime | None = None, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The messages that carry an answer and its sources, in order, each at most `limit` characters."""
    return split_message(answer_markdown(answer, now), limit)


def answer_markdown(answer: Answer, now: datetime | None = None) -> str:
    """The answer text with its [n] markers, then "Sources" (or "Closest sources" for a refusal)."""
    lines = [inert(answer.text.strip())]
    if answer.citations:
        lines += ["", "**Closest sources**" if answer.refused else "**Sources**"]
        lines += [source_line(citation, now) for citation in answer.citations]
    return "\n".join(lines)


def inert(text: str) -> str:
    """Text from documents, users or a model with no mentions and no masked links: every address shows."""
    return _MASKED_LINK.sub(r"\1 (<\2>)", neutralise_mentions(text))


def source_line(citation: Citation, now: datetime | None = None) -> str:
    """'[1] [Title](<https://…>) · updated 3 days ago', or '[1] Title — `billing/refunds.md`' for a file."""
    title = _MARKDOWN_SPECIAL.sub(r"\\\1", neutralise_mentions(citation.title or citation.doc_id))
    if is_link(citation.source):
        label = f"[{title}](<{_link_target(citation.source)}>)"
    else:
        label = f"{title} — `{display_path(citation)}`"
    age = updated_ago(citation.updated_at, now)
    return f"[{citation.n}] {label}" + (f" · {age}" if age else "")


def display_path(citation: Citation) -> str:
    """The document's path inside the knowledge base (billing/refunds.md), never the server's full path."""
    source = citation.source.replace("\\", "/")
    _, found, tail = source.rpartition(citation.doc_id)
    path = citation.doc_id + tail if found and "/" not in tail else citation.doc_id
    return path.replace("`", "'")


def _link_target(url: str) -> str:
    """The URL with the characters that would end `(<…>)` early percent-encoded."""
    return url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E").replace(")", "%29")


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split text into messages of at most `limit` characters at the best boundary before the limit.

    Never cuts inside a code block, inline code or a link; the messages joined together give back the
    text exactly. The one exception is a code block longer than a message by itself: it is split between
    lines into several fenced blocks (adding the fences).
    """
    text = _split_long_fences(text, limit)
    spans = [match.span() for match in _PROTECTED.finditer(text)]
    parts, start = [], 0
    while len(text) - start > limit:
        end = _cut(text, start, limit, spans)
        parts.append(text[start:end])
        start = end
    if start < len(text) or not parts:
        parts.append(text[start:])
    return parts


def _cut(text: str, start: int, limit: int, spans: list[tuple[int, int]]) -> int:
    """Where the message starting at `start` ends: the last allowed boundary within `limit` characters."""
    stop = start + limit
    spans = [(begin, end) for begin, end in spans if begin < stop and end > start]

    def allowed(position: int) -> bool:
        return all(not (begin < position < end) for begin, end in spans)

    for boundary in _BOUNDARIES:
        ends = [m.end() for m in boundary.finditer(text, start, stop)]
        ends = [end for end in ends if start < end <= stop and allowed(end)]
        if ends:
            return max(ends)
    # No boundary at all (one giant word): cut before the protected span in the way, else at the limit.
    blocking = [begin for begin, end in spans if begin < stop < end and begin > start]
    return blocking[0] if blocking else stop


def _split_long_fences(text: str, limit: int) -> str:
    """Rewrite each code block longer than `limit` as consecutive fenced blocks that each fit."""

    def split_fence(match: re.Match[str]) -> str:
        block = match.group(0)
        if len(block) <= limit:
            return block
        opening, _, body = block.partition("\n")
        body = body.removesuffix("```").removesuffix("\n")
        room = limit - len(opening) - len("\n\n```")
        pieces, current = [], ""
        for line in _lines_within(body, room):
            if current and len(current) + 1 + len(line) > room:
                pieces.append(current)
                current = line
            else:
                current = f"{current}\n{line}" if current else line
        pieces.append(current)
        return "\n".join(f"{opening}\n{piece}\n```" for piece in pieces)

    return _FENCE.sub(split_fence, text)


def _lines_within(body: str, room: int) -> list[str]:
    """The body's lines, with any line longer than `room` cut into pieces of `room` characters."""
    lines = []
    for line in body.split("\n"):
        lines += [line[i : i + room] for i in range(0, len(line), room)] or [""]
    return lines
