"""Seeds a journal with questions asked at chosen times, as the bot would have recorded them."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from bot.journal import Journal, SqliteJournal
from bot.models import Answer, Citation, Question


def earlier_today(now: datetime, hours: float) -> datetime:
    """`hours` before `now`, or midnight when that would fall on the day before (a test run just past midnight)."""
    return max(now - timedelta(hours=hours), now.replace(hour=0, minute=0, second=0, microsecond=0))


def escalations_of(journal: Journal):
    """A condition for FakeSlack.wait_for: the journal's hand-offs, once there are any."""

    async def escalations() -> list[dict]:
        return (await journal.activity_since(0))["escalations"]

    return escalations


async def backdate(journal: Journal, answer_id: str, asked_at: datetime) -> None:
    """Make a recorded answer look asked at `asked_at`, in whichever store the journal keeps it."""
    if isinstance(journal, SqliteJournal):
        with sqlite3.connect(journal.path) as connection:
            connection.execute(
                "UPDATE answers SET asked_at = ? WHERE id = ?", (asked_at.timestamp(), answer_id)
            )
        connection.close()
        return
    async with journal.database.connect() as connection:
        await connection.execute(
            "UPDATE journal_answers SET asked_at = to_timestamp(%s) WHERE id = %s",
            (asked_at.timestamp(), answer_id),
        )


def citation(doc_id: str, title: str, n: int = 1) -> Citation:
    return Citation(n, doc_id, title, f"/kb/{doc_id}.md", "", "…", None)


async def seed(
    journal: Journal,
    question: str,
    asked_at: datetime,
    *,
    refused: bool = False,
    cited: tuple[str, ...] = (),
    votes: tuple[int, ...] = (),
    total_ms: float = 800.0,
    platform: str = "slack",
    answer_text: str | None = None,
) -> Answer:
    """Record one question and its answer (or refusal) at `asked_at`, with votes by different people."""
    text = answer_text or (
        "I couldn't find an answer to this in the knowledge base." if refused else f"About {question} [1]."
    )
    answer = Answer(
        text,
        [citation(doc_id, doc_id.split("/")[-1].title(), n) for n, doc_id in enumerate(cited, 1)],
        refused=refused,
        confidence=0.2 if refused else 0.8,
        question=question,
        timings_ms={"total": total_ms},
    )
    asked = Question(
        question, asker="U0ASKER", channel="C0SUPPORT", conversation_id="C0SUPPORT:1.0", platform=platform
    )
    await journal.record_answer(asked, answer)
    for number, vote in enumerate(votes):
        await journal.record_feedback(answer.id, vote, None, f"U{number}")
    await backdate(journal, answer.id, asked_at)
    return answer
