"""Follow-up questions: candidate standalone queries built from the conversation so far."""

from __future__ import annotations

from bot.models import Question


def candidate_queries(question: Question) -> list[str]:
    """The question itself, then the question joined to the previous user question (for follow-ups).

    Retrieval runs both and keeps whichever the knowledge base answers more confidently, so
    "and for annual plans?" after "how long do refunds take?" finds refunds for annual plans, while a new
    topic is searched on its own.
    """
    queries = [question.text.strip()]
    earlier = [turn.text.strip() for turn in question.history if turn.role == "user" and turn.text.strip()]
    if earlier:
        queries.append(f"{earlier[-1]} {queries[0]}")
    return queries
