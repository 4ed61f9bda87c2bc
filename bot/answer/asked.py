"""What kind of fact a question asks for, and whether an answer states one of that kind."""

from __future__ import annotations

import re

from bot.answer.text import LIST_ITEM, MARKER, NUMBER

# A question, or its last clause, that asks for an amount: a duration, a price, a count, a limit.
ASKS_FOR_AN_AMOUNT = re.compile(
    r"(?:^|[,;:]\s*)(?:how (?:long|much|many|often|soon|fast|big|large|old)\b"
    r"|what(?:'s| is| are)? the (?:price|cost|limit|maximum|minimum|size)s?\b)",
    re.IGNORECASE,
)


def states_an_amount(answer: str) -> bool:
    """True when the answer states a number, list numbering and citation markers aside."""
    lines = (LIST_ITEM.sub("", line, count=1) for line in answer.split("\n"))
    return NUMBER.search(MARKER.sub("", "\n".join(lines))) is not None


def states_what_is_asked(question: str, answer: str) -> bool:
    """False for an answer that cannot be what the question asks: no amount where an amount is asked for.

    "How long does a refund take?" answered with the steps to request one is on the right page and still
    no answer.
    """
    return states_an_amount(answer) if ASKS_FOR_AN_AMOUNT.search(question.strip()) else True
