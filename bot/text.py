"""Text helpers shared by answer composition and grounding: sentences, answer units, markers, facts."""

from __future__ import annotations

import re

MARKER = re.compile(r"\s?\[(\d+)\]")
# A sentence ends at . ! or ? (with any citation markers after it) before a capital, digit or quote.
_SENTENCE_END = re.compile(r"[.!?](?:\s?\[\d+\])*(?!\s*\[\d+\])(?=\s+[\"'(\[]?[A-Z0-9`*])")
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s")
_FENCE = re.compile(r"^\s*```")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*%?")
URL = re.compile(r"https?://[^\s<>)\]]+|\b[\w.+-]+@[\w-]+\.[\w.]+\b")
CODE = re.compile(r"`[^`\n]+`")
# Capitalised words that are not at the start of a sentence: names of products, plans, menus.
PROPER_NAME = re.compile(r"(?<=[a-z0-9,;:] )(?:[A-Z][\w-]*[A-Za-z0-9])(?: [A-Z][\w-]*[A-Za-z0-9])*")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; citation markers stay with the sentence they follow."""
    sentences, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        sentences.append(text[start : end.end()])
        start = end.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]


def answer_units(passage: str) -> list[str]:
    """Self-contained pieces of a passage: sentences, and an intro sentence ending in ':' with its list."""
    units: list[str] = []
    in_code = False
    code: list[str] = []
    for block in re.split(r"\n\s*\n", passage):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if _FENCE.match(lines[0]) or in_code:
            code.extend(lines)
            in_code = (
                not (len(lines) > 1 and _FENCE.match(lines[-1]))
                if _FENCE.match(lines[0])
                else not any(_FENCE.match(line) for line in lines)
            )
            if not in_code:
                if units:
                    units[-1] = units[-1] + "\n" + "\n".join(code)
                code = []
            continue
        if all(_LIST_ITEM.match(line) for line in lines) and units and units[-1].rstrip().endswith(":"):
            units[-1] = units[-1] + "\n" + "\n".join(line.strip() for line in lines)
            continue
        prose = " ".join(line.strip() for line in lines if not _HEADING.match(line))
        if _LIST_ITEM.match(lines[0]):
            units.extend(line.strip() for line in lines if not _HEADING.match(line))
        elif prose:
            units.extend(split_sentences(prose))
    return [u for u in units if len(u.split()) >= 3]


def strip_markers(text: str) -> str:
    """Text without [n] citation markers."""
    return MARKER.sub("", text)


def facts(text: str) -> set[str]:
    """Numbers, URLs, e-mail addresses and code spans that an answer must not invent."""
    plain = strip_markers(text)
    found = {m.group(0).rstrip(".,;:") for m in URL.finditer(plain)}
    without_urls = URL.sub(" ", plain)
    found |= {m.group(0).rstrip(".,:") for m in NUMBER.finditer(without_urls)}
    found |= {m.group(0) for m in CODE.finditer(plain)}
    return {f for f in found if f}


def proper_names(text: str) -> set[str]:
    """Capitalised names inside sentences (products, plans, menu items)."""
    return {m.group(0) for m in PROPER_NAME.finditer(strip_markers(text))}


def normalise(text: str) -> str:
    """Collapse white space and unify quotes, for containment checks."""
    return " ".join(text.replace("’", "'").replace("“", '"').replace("”", '"').split())
