"""What replicas share in PostgreSQL (HELPDESK_DATABASE_URL): journal, hand-offs, learnt answers, chat state."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import pytest
from conftest import SMALL_KB, answer_settings, write
from fake_slack import (
    CHANNEL,
    FakeSlack,
    block_action,
    channel_message,
    event_callback,
    mention,
    signed_request,
    slack_settings,
)
from journal_seed import escalations_of

from bot.journal import UnknownAnswer
from bot.models import Question, Turn
from bot.runtime import (
    build_bot,
    close_database,
    index_backend,
    open_database,
    open_learnt_answers,
    open_sources,
)
from connectors.admin import SESSION_COOKIE
from connectors.dedupe import open_ledger
from connectors.discord_offers import OffersInMemory, open_offers
from connectors.server import HelpdeskServer
from connectors.slack_learning import SAVE_ACTION
from connectors.slack_render import ESCALATION_ACTION
from connectors.thread_memory import THREAD_TURNS, open_thread_memory
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.sync_log import sync_entry

psycopg = pytest.importorskip("psycopg")
from bot.pg_journal import PostgresJournal  # noqa: E402
from knowledge.database import Database  # noqa: E402

SUPPORT = "U0DANA"
QUESTION = "Can I pay in bitcoin?"


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


def _replica(tmp_path, name: str, fake_slack, database_url: str, fake_embeddings, **overrides):
    """One replica of `helpdesk serve` on the database: its own settings, data directory and objects."""
    settings = slack_settings(
        tmp_path,
        fake_slack,
        data_dir=tmp_path / name,
        database_url=database_url,
        sources=[str(tmp_path / "small-kb")],
        retrieval_mode="bm25",
        min_confidence=0.0,
        min_support=-1.0,
        slack_escalation_channel="C0ESCALATE",
        slack_trusted_users=[SUPPORT],
        **overrides,
    )
    kb = KnowledgeBase(settings.data_dir, fake_embeddings, Chunker(400, 50), "fake", index_backend(settings))
    return settings, HelpdeskServer(settings, build_bot(settings, kb), kb)


async def _post(server: HelpdeskServer, payload: dict, *, form: bool = False) -> None:
    body, headers = signed_request(payload, form=form)
    url = f"http://127.0.0.1:{server.port}/slack/events"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        assert response.status == 200


async def test_a_hand_off_and_a_learnt_answer_made_on_one_replica_serve_on_another(
    tmp_path, database_url, fake_embeddings
):
    for name, text in SMALL_KB.items():
        write(tmp_path / "small-kb" / name, text)
    async with FakeSlack() as fake_slack:
        fake_slack.profiles[SUPPORT] = {"display_name": "Dana"}
        (settings_a, a), (settings_b, b) = [
            _replica(tmp_path, name, fake_slack, database_url, fake_embeddings) for name in ("a", "b")
        ]
        await a.knowledge_base.sync(open_sources(settings_a))
        await a.start()
        await b.start()
        try:
            # Replica A answers, and hands the answer to a person.
            question = mention(fake_slack, QUESTION)
            await _post(a, event_callback(question))
            [answer] = await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL))
            await _post(a, block_action(answer, ESCALATION_ACTION), form=True)
            await fake_slack.wait_for(escalations_of(a.bot.journal))
            [handoff] = (await b.bot.journal.activity_since(0))["escalations"]  # B sees the hand-off
            assert (handoff["question"], handoff["posted_to"]) == (QUESTION, "C0ESCALATE")

            # Replica B gets the reply of the support team in that thread: it knows the question waits for a
            # person, offers to save the reply, and saves it.
            reply = channel_message(
                fake_slack, "Yes, through Coinbase Commerce.", user=SUPPORT, thread_ts=question["ts"]
            )
            await _post(b, event_callback(reply))
            [offer] = await fake_slack.wait_for(
                lambda: [e for e in fake_slack.ephemeral if SAVE_ACTION in str(e.get("blocks", ""))]
            )
            offer_message = {"ts": fake_slack.next_ts(), "blocks": offer["blocks"]}
            await _post(b, block_action(offer_message, SAVE_ACTION, user=SUPPORT), form=True)
            await fake_slack.wait_for(
                lambda: [e for e in fake_slack.ephemeral if "Saved as answer" in e["text"]]
            )
            [entry] = await open_learnt_answers(settings_a).entries()  # A sees the learnt answer…
            assert (entry.question, entry.answered_by) == (QUESTION, "Dana")

            # …and answers the question from it, citing who answered.
            await _post(a, event_callback(mention(fake_slack, QUESTION)))
            again = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL)[1:]))[0]
        finally:
            await b.stop()
            await a.stop()
            for settings in (settings_a, settings_b):
                await close_database(settings)
    assert "Coinbase Commerce" in again["text"] and "Answered by Dana" in json.dumps(again["blocks"])
    for replica in ("a", "b"):  # nothing of it in either data directory
        assert not any((tmp_path / replica / name).exists() for name in ("learnt", "journal.sqlite3"))


async def test_discord_threads_are_remembered_by_every_replica(tmp_path, database_url):
    settings = answer_settings(tmp_path, database_url=database_url)
    replica = answer_settings(tmp_path, database_url=database_url, data_dir=tmp_path / "replica")
    memory, other = open_thread_memory(settings), open_thread_memory(replica)
    try:
        assert await other.turns("T1") is None
        await memory.add("T1", "How do I start a refund?", "Email billing.")
        await other.add("T1", "And for annual plans?", "Pro rata.")
        assert await memory.turns("T1") == (
            Turn("user", "How do I start a refund?"),
            Turn("assistant", "Email billing."),
            Turn("user", "And for annual plans?"),
            Turn("assistant", "Pro rata."),
        )
        for number in range(THREAD_TURNS):
            await memory.add("T1", f"question {number}", f"answer {number}")
        kept = await other.turns("T1")
        assert len(kept) == THREAD_TURNS and kept[-1] == Turn("assistant", f"answer {THREAD_TURNS - 1}")

        async with open_database(settings).connect() as connection:  # a month without a message
            await connection.execute("UPDATE discord_threads SET expires_at = now() - interval '1 second'")
        assert await other.turns("T1") is None
        await other.add("T1", "Hello again", "Hi.")
        assert await memory.turns("T1") == (Turn("user", "Hello again"), Turn("assistant", "Hi."))
    finally:
        await close_database(settings)
        await close_database(replica)


@pytest.mark.parametrize("shared", [True, False], ids=["postgres", "memory"])
async def test_discord_offers_are_taken_once_and_expire(tmp_path, request, shared):
    database_url = request.getfixturevalue("database_url") if shared else None
    settings = answer_settings(tmp_path, database_url=database_url)
    replica = answer_settings(tmp_path, database_url=database_url, data_dir=tmp_path / "replica")
    day, past = timedelta(days=1), timedelta(seconds=-1)
    publish, save = open_offers(settings, "publish", day), open_offers(settings, "save", day)
    expired = open_offers(settings, "old", past)
    other = open_offers(replica, "publish", day) if shared else publish
    assert isinstance(publish, OffersInMemory) is not shared
    try:
        await publish.keep("A1", {"text": "Email billing.", "asker": 400000000000000007})
        await save.keep("A1", {"text": "another kind"})
        await expired.keep("A1", {"text": "too late"})
        assert await other.get("A1") == {"text": "Email billing.", "asker": 400000000000000007}
        taken = await asyncio.gather(other.take("A1"), publish.take("A1"))
        assert sorted(taken, key=str) == [None, {"text": "Email billing.", "asker": 400000000000000007}]
        assert await other.get("A1") is None and await save.get("A1") == {"text": "another kind"}
        assert await expired.get("A1") is None and await expired.take("A1") is None
    finally:
        await close_database(settings)
        await close_database(replica)


async def _connections(database_url: str) -> int:
    """Connections open to the test's database, this one aside."""
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return (await cursor.fetchone())[0]


async def test_each_process_keeps_a_small_pool_of_connections_and_closes_it(tmp_path, database_url):
    settings = answer_settings(tmp_path, database_url=database_url, database_pool_size=2)
    database = open_database(settings)
    assert open_database(settings) is database and open_ledger(settings, "x").database is database
    peak = 0

    async def busy() -> None:
        async with database.connect() as connection:
            await connection.execute("SELECT pg_sleep(0.2)")

    async def watch() -> None:
        nonlocal peak
        for _ in range(10):
            peak = max(peak, await _connections(database_url))
            await asyncio.sleep(0.05)

    await busy()  # migrated, pool open
    started = time.monotonic()
    await asyncio.gather(*(busy() for _ in range(6)), watch())
    assert peak == 2 and time.monotonic() - started >= 0.6  # six calls took turns on two connections
    await close_database(settings)
    assert await _connections(database_url) == 0


async def test_the_record_of_syncs_takes_its_connections_from_the_pool(tmp_path, database_url):
    settings = answer_settings(tmp_path, database_url=database_url, database_pool_size=2)
    sync_log, database = index_backend(settings).sync_log, open_database(settings)
    try:
        async with database.connect(), database.connect():  # every connection of the pool is busy
            recording = asyncio.create_task(sync_log.record(sync_entry(datetime.now(UTC))))
            reading = asyncio.create_task(sync_log.recent())
            await asyncio.sleep(0.3)
            assert not recording.done() and not reading.done()  # waiting for the pool, not connecting
            assert await _connections(database_url) == 2
        await recording
        await reading
        [entry] = await sync_log.entries()
        assert entry["outcome"] == "ok" and await _connections(database_url) <= 2
    finally:
        await close_database(settings)


def test_a_command_that_never_closes_the_database_still_ends(database_url):
    database = PostgresJournal(Database(database_url))

    def command() -> None:
        for _ in range(3):  # each run opens a pool in its own event loop, closed as the loop ends
            asyncio.run(database.answers())

    runner = threading.Thread(target=command, daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive()


async def test_a_login_to_the_admin_page_holds_on_every_replica(tmp_path, database_url, fake_embeddings):
    token = "admin-token-do-not-log-0123456789"
    async with FakeSlack() as fake_slack:
        replicas = [
            _replica(tmp_path, name, fake_slack, database_url, fake_embeddings, admin_token=token)
            for name in ("a", "b")
        ]
        (settings_a, a), (settings_b, b) = replicas
        await a.start()
        await b.start()
        try:
            async with httpx.AsyncClient() as browser:
                login = await browser.post(f"http://127.0.0.1:{a.port}/admin/login", data={"token": token})
                session = browser.cookies[SESSION_COOKIE]
                assert login.status_code == 303 and session  # logged in on A…
                on_b = await browser.get(f"http://127.0.0.1:{b.port}/admin/conversations")
                assert on_b.status_code == 200 and "<h1>Conversations</h1>" in on_b.text  # …and known to B
                await browser.post(f"http://127.0.0.1:{b.port}/admin/logout")
                browser.cookies.set(SESSION_COOKIE, session)  # the old cookie, logged out on B
                assert (await browser.get(f"http://127.0.0.1:{a.port}/admin")).status_code == 401
        finally:
            await b.stop()
            await a.stop()
            for settings in (settings_a, settings_b):
                await close_database(settings)
