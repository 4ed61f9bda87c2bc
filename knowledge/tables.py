"""Markdown tables as sentences: one line per row, each value named by its column, so rows can be found and quoted."""

from __future__ import annotations

import re

_ROW = re.compile(r"^\s*\|.*\|\s*$")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# Marks that comparison tables use for "included" and "not included".
_YES = {"✓", "✔", "✔️", "✅", "☑"}
_NO = {"—", "–", "-", "✗", "✘", "❌", "✕"}
# A row of a table with several value columns, as `_sentence` writes it: "Users — Starter: 1; Growth: 5."
_ROW_SENTENCE = re.compile(r" — [^:;]+: [^;]+(?:; [^:;]+: [^;]+)+")


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


def _value(cell: str) -> str:
    if cell in _YES:
        return "yes"
    if cell in _NO:
        return "no"
    return cell


def _sentence(header: list[str], row: list[str]) -> str:
    """`Monthly price — Starter: $12/month; Growth: $29/month.` for a row under its column names."""
    label, values = row[0], row[1:]
    named = [
        f"{name}: {_value(value)}" if name else _value(value)
        for name, value in zip(header[1:], values, strict=False)
        if value
    ]
    if len(header) == 2 and values:
        text = f"{label}: {_value(values[0])}" if label else _value(values[0])
    else:
        text = " — ".join(part for part in (label, "; ".join(named)) if part)
    return text if text[-1:] in ".!?" else f"{text}."


def has_table_row(text: str) -> bool:
    """True when `text` quotes a table row read as a sentence (its values named by column)."""
    return _ROW_SENTENCE.search(text) is not None


def segments(markdown: str) -> list[tuple[str, bool]]:
    """The text as runs of other lines (False) and table rows read as sentences (True), in order.

    Code blocks are left as they are; a table without a separator line is not a table.
    """
    lines = markdown.splitlines()
    pieces: list[tuple[str, bool]] = []
    prose: list[str] = []
    in_code = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            in_code = not in_code
        is_table = (
            not in_code and _ROW.match(line) and index + 1 < len(lines) and _SEPARATOR.match(lines[index + 1])
        )
        if not is_table:
            prose.append(line)
            index += 1
            continue
        if prose:
            pieces.append(("\n".join(prose), False))
            prose = []
        header = _cells(line)
        index += 2
        while index < len(lines) and _ROW.match(lines[index]):
            row = _cells(lines[index])
            if any(row):
                pieces.append((_sentence(header, row), True))
            index += 1
    if prose:
        pieces.append(("\n".join(prose), False))
    return pieces
