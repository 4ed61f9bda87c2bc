"""The journal and the Slack dedupe ledger in PostgreSQL (HELPDESK_DATABASE_URL), shared by replicas."""

from __future__ import annotations

import asyncio

import pytest
from conftest import SMALL_KB, answer_settings, write

from bot.journal import UnknownAnswer
from bot.models import Question
from bot.runtime import build_bot, open_sources
from connectors.dedupe import open_ledger
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker

pytest.importorskip("psycopg")


async def test_answers_and_votes_go_to_the_database(tmp_path, database_url, fake_embeddings):
    for name, text in SMALL_KB.items():
        write(tmp_path / "small-kb" / name, text)
    settings = answer_settings(tmp_path, database_url=database_url)
    kb = KnowledgeBase(settings.data_dir, fake_embeddings, Chunker(400, 50), "fake")
    await kb.sync(open_sources(settings))
    bot, replica = build_bot(settings, kb), build_bot(settings, kb)
    answer = await bot.answer(Question("How do I start a refund?", asker="U0", channel="C1"))
    await bot.feedback(answer.id, "up", voter="U1")
    await replica.feedback(answer.id, "down", voter="U2")
    await replica.feedback(answer.id, "down", "changed my mind", voter="U1")
    await bot.feedback(answer.id, "up")  # anonymous votes (no voter known) are all kept
    await bot.feedback(answer.id, "up")
    votes = await replica.journal.feedback_for(answer.id)
    assert sorted(votes, key=str) == sorted(
        [(-1, None, "U2"), (-1, "changed my mind", "U1"), (1, None, None), (1, None, None)], key=str
    )
    [record] = await replica.journal.answers()
    assert (record["id"], record["asker"], record["channel"]) == (answer.id, "U0", "C1")
    assert (record["refused"], record["answer"]) == (int(answer.refused), answer.text)
    assert not (settings.data_dir / "journal.sqlite3").exists()
    with pytest.raises(UnknownAnswer):
        await bot.journal.record_feedback("no-such-answer", 1, None, "U1")


async def test_a_slack_event_is_claimed_by_one_replica_only(tmp_path, database_url):
    settings = answer_settings(tmp_path, database_url=database_url)
    replicas = [open_ledger(settings, "slack-events") for _ in range(3)]
    results = await asyncio.gather(*(ledger.claim("event:Ev9") for ledger in replicas for _ in range(4)))
    assert results.count(True) == 1
    assert not await replicas[1].claim("event:Ev10", "event:Ev9")  # any key seen → nothing recorded
    assert await replicas[2].claim("event:Ev10")
    assert not (settings.data_dir / "slack-events.sqlite3").exists()


async def test_threads_the_bot_joined_are_remembered_until_they_expire(tmp_path, database_url):
    settings = answer_settings(tmp_path, database_url=database_url)
    ledger, replica = open_ledger(settings, "slack-events"), open_ledger(settings, "slack-events")
    await ledger.remember("thread:C1:1.1", ttl_s=60)
    assert await replica.contains("thread:C1:1.1")
    await ledger.remember("thread:C1:1.1", ttl_s=-1)
    assert not await replica.contains("thread:C1:1.1")
    assert await replica.claim("thread:C1:1.1", ttl_s=60)
    assert await ledger.contains("thread:C1:1.1")
