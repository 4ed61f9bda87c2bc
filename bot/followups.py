"""Follow-up questions: candidate standalone queries built from the conversation so far."""

from __future__ import annotations

import re

from bot.models import Question

# A question that opens like this continues the previous one ("and for annual plans?", "what about Growth?"):
# on its own it names only the detail that changed, not the subject.
CONTINUATION = re.compile(r"^\s*(?:and|but|or|also|so|then|what about|how about|same for)\b", re.IGNORECASE)
# A question with one of these words may point back at the conversation ("how long is it valid?", "does that
# work on mobile?"); one without them names its own subject ("can I pay with PayPal?").
REFERS_BACK = re.compile(
    r"\b(?:it|its|it's|that|this|these|those|they|them|their|there|one|ones|same)\b", re.IGNORECASE
)
# A short question about "the" something ("how long is the link valid?") may mean the one just discussed.
THE = re.compile(r"\bthe\b", re.IGNORECASE)
SHORT_QUESTION_WORDS = 6


def candidate_queries(question: Question) -> list[str]:
    """The readings of a question to search: on its own, joined to the previous user question, or both.

    A question that opens as a continuation ("and for annual plans?" after "how long do refunds take?") is
    only searched joined to the previous one: alone it would find annual prices. One that may point back
    ("how long is it valid?", or a short one about "the link") is searched both ways, and retrieval keeps
    the reading the knowledge base answers more confidently. Any other question names its own subject and is searched alone: joined to an
    earlier question it would find that question's article ("can I pay with PayPal?" after a question about
    API limits is not about API limits).
    """
    text = question.text.strip()
    earlier = [turn.text.strip() for turn in question.history if turn.role == "user" and turn.text.strip()]
    if not earlier:
        return [text]
    joined = f"{earlier[-1]} {text}"
    if CONTINUATION.match(text):
        return [joined]
    short_about_the = len(text.split()) <= SHORT_QUESTION_WORDS and THE.search(text)
    return [text, joined] if REFERS_BACK.search(text) or short_about_the else [text]
