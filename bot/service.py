"""HelpdeskBot: the one entry point connectors and the command line call to answer and take feedback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.chain import RagChain
from bot.journal import Journal, JournalError, UnknownAnswer
from bot.models import Answer, Question

log = logging.getLogger(__name__)

VOTES = {"up": 1, "down": -1, 1: 1, -1: -1}


class HelpdeskBot:
    """Answers questions through the RAG chain, logs every answer, and stores feedback durably."""

    def __init__(self, chain: RagChain, journal: Journal):
        self.chain = chain
        self.journal = journal

    async def warm_up(self) -> None:
        """Load what the first answer would otherwise wait for (the answer and tone models), off the loop."""
        if self.chain.judge is not None:
            await self.chain.judge.load()
        if self.chain.tone is not None:
            try:
                await self.chain.tone.load()
            except Exception:
                log.exception("The tone model could not be loaded; answers are posted in their plain wording")
                self.chain.tone = None

    async def answer(
        self, question: Question, on_delta: Callable[[str], Awaitable[None]] | None = None
    ) -> Answer:
        """Answer a question; `on_delta` receives streamed text when the generator streams."""
        if not question.text.strip():
            msg = "The question is empty: ask something about the knowledge base"
            raise ValueError(msg)
        answer = await self.chain.runnable.ainvoke({"question": question, "on_delta": on_delta})
        try:
            await self.journal.record_answer(question, answer)
        except JournalError as error:
            log.error("Answer %s is given but not recorded: %s", answer.id, error)
        log.info(
            "answered %s refused=%s confidence=%.3f total_ms=%.0f",
            answer.id,
            answer.refused,
            answer.confidence,
            answer.timings_ms.get("total", 0.0),
        )
        return answer

    async def feedback(
        self, answer_id: str, vote: str | int, comment: str | None = None, voter: str | None = None
    ) -> None:
        """Record a 👍 ("up", 1) or 👎 ("down", -1) on an answer, with an optional comment.

        A voter voting again on the same answer replaces their vote. Raises UnknownAnswer for an id never
        answered, and JournalError (already logged) when the vote could not be stored.
        """
        if vote not in VOTES:
            msg = f"Unknown vote {vote!r}: use 'up' or 'down'"
            raise ValueError(msg)
        try:
            await self.journal.record_feedback(answer_id, VOTES[vote], comment, voter)
        except JournalError as error:
            log.error("A vote on answer %s is not recorded: %s", answer_id, error)
            raise

    async def answer_on_record(self, answer_id: str) -> dict:
        """The journal row of an answer (question, answer, channel, conversation…), for handing it to a person.

        Raises UnknownAnswer for an id never answered and JournalError when the journal cannot be read.
        """
        row = await self.journal.answer(answer_id)
        if row is None:
            msg = f"No answer with id {answer_id!r}"
            raise UnknownAnswer(msg)
        return row

    async def escalated(
        self, answer_id: str, requested_by: str | None, platform: str, posted_to: str | None
    ) -> None:
        """Record that a person of the support team was asked to take over; a failure is logged, not raised."""
        try:
            await self.journal.record_escalation(answer_id, requested_by, platform, posted_to)
        except (JournalError, UnknownAnswer) as error:
            log.error("The hand-off of answer %s to a person is not recorded: %s", answer_id, error)
