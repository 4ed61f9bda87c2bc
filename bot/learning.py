"""Answers learnt from people: which replies answer a question the bot could not, saving and forgetting them."""

from __future__ import annotations

import asyncio
import logging

from bot.journal import Journal, JournalError
from bot.service import HelpdeskBot
from knowledge.base import KnowledgeBase
from knowledge.sources.learnt import LearntEntry, LearntStore
from knowledge.store import SyncInProgress

log = logging.getLogger(__name__)

# A saved answer is indexed at once, unless another sync holds the lock: then it is tried again every
# INDEX_RETRY_S for up to INDEX_ATTEMPTS times (5 minutes, longer than a sync that changes a few documents
# takes); after that the next sync indexes it, since the configured sources always include the learnt ones.
INDEX_RETRY_S = 2.0
INDEX_ATTEMPTS = 150


class NotIndexedYet(RuntimeError):
    """The entry is saved, but a long sync kept the index busy: the next sync makes it searchable."""


class AnswerLearning:
    """Saves a person's reply to a refused or handed-off question as a knowledge-base entry, indexed at once."""

    def __init__(
        self,
        journal: Journal,
        knowledge_base: KnowledgeBase,
        answers: LearntStore,
    ):
        self.journal = journal
        self.knowledge_base = knowledge_base
        self.answers = answers

    @classmethod
    def of(cls, bot: HelpdeskBot, answers: LearntStore) -> AnswerLearning:
        """Learning for a bot: its journal and knowledge base, and the learnt answers (runtime.open_learnt_answers)."""
        return cls(bot.journal, bot.chain.retriever.knowledge_base, answers)

    async def question_replied_to(self, platform: str, conversation_id: str, author: str) -> dict | None:
        """The journal row of the question a person's reply answers: the conversation's latest refused or
        handed-off answer, unless that person asked it (their reply is a follow-up, not an answer)."""
        try:
            row = await self.journal.awaiting_a_person(platform, conversation_id)
        except JournalError as error:
            log.error("Cannot tell whether a reply answers a question the bot could not: %s", error)
            return None
        if row is None or row["asker"] == author:
            return None
        return row

    async def save(
        self, row: dict, reply: str, answered_by: str, answered_by_id: str, platform: str, link: str | None
    ) -> LearntEntry:
        """Store the question of `row` with the person's reply, then index it; NotIndexedYet if it must wait."""
        if not reply.strip():
            msg = "The reply is empty: only a reply with text can be saved as an answer"
            raise ValueError(msg)
        entry = LearntEntry(
            question=row["question"],
            answer=reply.strip(),
            answered_by=answered_by,
            answered_by_id=answered_by_id,
            platform=platform,
            link=link,
            answer_id=row["id"],
        )
        await self.answers.save(entry)
        log.info("Learnt answer %s saved by %s (%s)", entry.id, answered_by_id, platform)
        await self.reindex()
        return entry

    async def forget(self, entry_id: str) -> None:
        """Remove an entry and drop it from the index (UnknownEntry when there is none)."""
        await self.answers.remove(entry_id)
        log.info("Learnt answer %s removed", entry_id)
        await self.reindex()

    async def reindex(self) -> None:
        """Sync the learnt answers alone, waiting for a sync in progress to finish."""
        for _ in range(INDEX_ATTEMPTS):
            try:
                await self.knowledge_base.sync([self.answers])
                return
            except SyncInProgress:
                await asyncio.sleep(INDEX_RETRY_S)
        msg = "Done, but another sync kept the index busy: answers follow the change after the next sync"
        raise NotIndexedYet(msg)
