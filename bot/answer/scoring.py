"""Answer scoring by key facts: CORRECT, MISSING or WRONG per question, score = (correct − wrong) / questions.

A question's `key_facts` is a list of groups of alternative phrasings; an answer is right when it contains
one alternative of every group, compared after both are normalised: markup and citation markers removed
(the text of code spans kept), quotes and dashes unified, white space collapsed, case folded.
"""

from __future__ import annotations

import html
import re
from collections import Counter

CORRECT, MISSING, WRONG = "correct", "missing", "wrong"

_QUOTES = {**dict.fromkeys("\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033\uff02", '"')}
_QUOTES |= dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u0060\u2039\u203a", "'")
_DASHES = dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-")
_SPACES = dict.fromkeys("\u00a0\u202f\u2009", " ")
_UNIFY = str.maketrans({**_QUOTES, **_DASHES, **_SPACES})
_CITATION = re.compile(
    r"\[(?:\^?\d+(?:\s*[,;\u2013-]\s*\^?\d+)*|(?:doc|source|ref)\s*\d+)\]|\u3010[^\u3011]*\u3011", re.I
)
_CODE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)|`([^`\n]+)`", re.S)
_PROSE_MARKUP = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links
    (re.compile(r"(?m)^[ \t]{0,3}#{1,6}[ \t]+"), ""),  # headings
    (re.compile(r"(?m)^[ \t]{0,3}>[ \t]?"), ""),  # block quotes
    (re.compile(r"(?m)^[ \t]*(?:[-*+]|\d+[.)])[ \t]+"), ""),  # list bullets
    (re.compile(r"(?<![\w*])(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1(?![\w*])"), r"\2"),  # emphasis
]


def _strip_prose(text: str) -> str:
    for pattern, replacement in _PROSE_MARKUP:
        text = pattern.sub(replacement, text)
    return text


def visible_text(answer: str) -> str:
    """The answer as a reader sees it: HTML tags and Markdown markup gone, code spans' text kept."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", answer))
    parts, position = [], 0
    for code in _CODE.finditer(text):
        parts.append(_strip_prose(text[position : code.start()]))
        block, span = code.group(1), code.group(2)
        parts.append(f" {block} " if block is not None else span)
        position = code.end()
    parts.append(_strip_prose(text[position:]))
    return "".join(parts)


def _plain(text: str) -> str:
    """Citation markers removed, quotes and dashes unified, white space collapsed, lower case."""
    return " ".join(_CITATION.sub("", text).translate(_UNIFY).split()).lower()


def contains_key_facts(answer: str, key_facts: list[list[str]]) -> bool:
    """True when the answer contains at least one alternative of every group."""
    plain = _plain(visible_text(answer))
    return all(any(_plain(alternative) in plain for alternative in group) for group in key_facts)


def is_scored(question: dict) -> bool:
    """Unanswerable questions and answerable ones with key facts are scored; the rest are not."""
    return not question["gold_doc_ids"] or bool(question.get("key_facts"))


def verdict(question: dict, answer: str, refused: bool) -> str:
    """CORRECT, MISSING or WRONG for one scored question."""
    if not question["gold_doc_ids"]:
        return CORRECT if refused else WRONG
    if refused:
        return MISSING
    return CORRECT if contains_key_facts(answer, question["key_facts"]) else WRONG


def tally(verdicts: list[str]) -> dict:
    """Counts and score = (correct − wrong) / questions."""
    counts = Counter(verdicts)
    n = len(verdicts)
    return {
        "n": n,
        CORRECT: counts[CORRECT],
        MISSING: counts[MISSING],
        WRONG: counts[WRONG],
        "score": round((counts[CORRECT] - counts[WRONG]) / n, 4) if n else None,
    }
