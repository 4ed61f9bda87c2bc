"""Text helpers shared by answer composition and grounding: sentences, answer units, markers, facts."""

from __future__ import annotations

import re

from knowledge.index import announces_what_follows

MARKER = re.compile(r"\s?\[(\d+)\]")
# A sentence ends at . ! or ? (with any citation markers after it) before a capital, digit or quote.
# "2." opening a list item is not the end of a sentence.
_SENTENCE_END = re.compile(
    r"(?<!^\d)(?<!\s\d)(?<!^\d\d)(?<!\s\d\d)[.!?](?:\s?\[\d+\])*(?!\s*\[\d+\])(?=\s+[\"'(\[]?[A-Z0-9`*])"
)
LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s")
FENCE = re.compile(r"^\s*```")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*%?")
URL = re.compile(r"https?://[^\s<>)\]]+|\b[\w.+-]+@[\w-]+\.[\w.]+\b")
CODE = re.compile(r"`[^`\n]+`")
# Capitalised words that are not at the start of a sentence: names of products, plans, menus.
PROPER_NAME = re.compile(r"(?<=[a-z0-9,;:] )(?:[A-Z][\w-]*[A-Za-z0-9])(?: [A-Z][\w-]*[A-Za-z0-9])*")


# A menu path ("Format - Print Ranges - Edit", "Settings > Billing", "Tools → Options"): a menu name and
# capitalised labels, joined by dashes, ">" or arrows. Emphasised or quoted text ("*Rows to repeat*", "**OK**", "\"Save\"") is
# read as the label of a button, field or tab.
_LABEL_WORDS = r"[A-Z][\w]*(?:\.\w+)*(?: (?:and|or|of|to|the|&) [A-Z]\w*| [A-Z]\w*)*"
MENU_PATH = re.compile(rf"[A-Z]\w*(?: (?:-|–|—|>|→) {_LABEL_WORDS})+")
EMPHASIS = re.compile(r"(\*{1,2}|_{1,2})(?=\S)([^*_\n]{2,60}?)(?<=\S)\1|\"([^\"\n]{2,40})\"")
_LABEL_NOISE = re.compile(r"[*_`\"“”]")
# Shorter pieces ("See below.", a stray link) are no answer on their own; a line a sentence announces joins it.
MIN_UNIT_WORDS = 3
_PATH_SEPARATOR = re.compile(r"\s*(?:-|–|—|>|→)\s+")


def label_form(text: str) -> str:
    """Text compared for labels: emphasis and quotes gone, path separators unified, case folded."""
    return " ".join(_PATH_SEPARATOR.sub(" - ", _LABEL_NOISE.sub("", text)).split()).lower()


def labels(text: str) -> set[str]:
    """Menu paths and emphasised or quoted labels: what a user looks for on screen, to be found as written."""
    plain = strip_markers(text)
    found = {m.group(2) or m.group(3) for m in EMPHASIS.finditer(plain)}
    found |= {m.group(0).rstrip(".,;:!?") for m in MENU_PATH.finditer(_LABEL_NOISE.sub("", plain))}
    return {label.strip() for label in found if label and label.strip()}


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; citation markers stay with the sentence they follow."""
    sentences, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        sentences.append(text[start : end.end()])
        start = end.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]


def paragraphs(text: str) -> list[str]:
    """The paragraphs of a text; a fenced code block stays whole even across blank lines."""
    return ["\n".join(lines) for lines in _blocks(text)]


def _blocks(passage: str) -> list[list[str]]:
    """Paragraphs as lists of lines; a fenced code block stays whole even across blank lines.

    A code block fenced at the margin is a block of its own even without blank lines around it
    ("Run this:" on the line before its fence), so it is never read as prose. A fence indented under a
    list item stays part of the item.
    """
    blocks: list[list[str]] = []
    current: list[str] = []
    in_code = False
    for line in passage.splitlines():
        at_margin = line.startswith("```")
        if FENCE.match(line):
            if not in_code and at_margin and current:
                blocks.append(current)
                current = []
            in_code = not in_code
            if not in_code and at_margin:
                blocks.append([*current, line])
                current = []
                continue
        if not line.strip() and not in_code:
            if current:
                blocks.append(current)
            current = []
        else:
            current.append(line)
    if current:
        blocks.append(current)
    return blocks


def answer_units(passage: str) -> list[str]:
    """Self-contained pieces of a passage: sentences, whole lists (with their intro) and code with its lead-in."""
    units: list[str] = []
    for lines in _blocks(passage):
        if FENCE.match(lines[0]):
            # Code belongs to the sentence that introduces it; a passage of code alone is itself an answer.
            if units:
                units[-1] = units[-1] + "\n" + "\n".join(lines)
            else:
                units.append("\n".join(lines))
            continue
        lines = [line.strip() for line in lines if not _HEADING.match(line)]
        first_item = next((i for i, line in enumerate(lines) if LIST_ITEM.match(line)), len(lines))
        if len(lines) == 1 and len(lines[0].split()) < MIN_UNIT_WORDS:
            # What a sentence announces may stand alone on its line (a link, a key, a command): read it as a list.
            first_item = 0
        prose, items = " ".join(lines[:first_item]), lines[first_item:]
        if prose:
            units.extend(split_sentences(prose))
        if items:
            # A list is read as a whole (steps belong together), with the line that introduces it.
            if units and announces_what_follows(units[-1]):
                units[-1] = units[-1] + "\n" + "\n".join(items)
            else:
                units.append("\n".join(items))
    units = [u for u in units if len(u.split()) >= MIN_UNIT_WORDS]
    # A passage may start or end mid-sentence where it was cut to size: leave such fragments out.
    if units and units[-1].rstrip("*_`)\"'")[-1:] not in ".!?:" and "\n" not in units[-1]:
        units.pop()
    if units and units[0][:1].islower():
        units.pop(0)
    return units


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
