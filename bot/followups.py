"""Turns a follow-up question into a standalone query using the conversation so far."""

from __future__ import annotations

import re

from bot.models import Question
from knowledge.index import tokenize

# Words that point back at something said earlier.
_REFERRING = re.compile(
    r"\b(it|its|it's|that|this|those|these|they|them|there|one|same|instead|also|else|too)\b|^(and|or|but|what about|how about|so)\b",
    re.IGNORECASE,
)
_MAX_CONTENT_WORDS = 4


def needs_context(text: str) -> bool:
    """A question that refers back, or is too short to stand alone."""
    return bool(_REFERRING.search(text)) or len(tokenize([text])[0]) < _MAX_CONTENT_WORDS


def standalone_query(question: Question) -> str:
    """The question itself, or prefixed with the previous user question when it depends on it."""
    earlier = [turn.text for turn in question.history if turn.role == "user" and turn.text.strip()]
    if not earlier or not needs_context(question.text):
        return question.text
    return f"{earlier[-1].strip()} {question.text.strip()}"
