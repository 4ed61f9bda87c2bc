"""Follow-up questions: candidate standalone queries built from the conversation so far."""

from __future__ import annotations

import re

from bot.models import Question

# A question that opens like this continues the previous one ("and for annual plans?", "what about Growth?"):
# on its own it names only the detail that changed, not the subject.
CONTINUATION = re.compile(r"^\s*(?:and|but|or|also|so|then|what about|how about|same for)\b", re.IGNORECASE)


def candidate_queries(question: Question) -> list[str]:
    """The question itself, then the question joined to the previous user question (for follow-ups).

    Retrieval runs both and keeps whichever the knowledge base answers more confidently, so a new topic is
    searched on its own. A question that opens as a continuation ("and for annual plans?" after "how long do
    refunds take?") is only searched joined to the previous one: alone it would find annual prices.
    """
    text = question.text.strip()
    earlier = [turn.text.strip() for turn in question.history if turn.role == "user" and turn.text.strip()]
    if not earlier:
        return [text]
    joined = f"{earlier[-1]} {text}"
    return [joined] if CONTINUATION.match(text) else [text, joined]
