"""Events acknowledged and not answered: another replica (or the restarted bot) answers them, once."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from fake_slack import (
    BOT_USER_ID,
    CHANNEL,
    FakeSlack,
    event_callback,
    mention,
    signed_request,
    slack_settings,
)
from test_slack_http import bot_writing

from bot.runtime import close_database
from connectors.pending_events import MAX_TAKEOVERS, PendingEvent, PendingEvents, PendingEventSweeper
from connectors.server import HelpdeskServer
from connectors.slack_render import reply_metadata

# A lease and a sweep short enough for a test to see a lease lapse and the event taken over.
TEST_LEASE_S = 1.0
TEST_SWEEP_S = 0.1
QUESTION = "How do I start a refund?"
# A model writing so slowly that a replica is stopped long before it finishes its answer (two words, 16 s);
# its endpoint, which shuts down only once the answer is written, keeps the test waiting no longer than that.
NEVER_FINISHED, MODEL_WORD_S = "Never finished.", 8.0


@pytest.fixture
def quick_takeover(monkeypatch):
    """Leases of a second, swept every tenth of one; a replica stopped gives its answers no time to end."""
    monkeypatch.setattr("connectors.slack.CLAIM_LEASE_S", TEST_LEASE_S)
    monkeypatch.setattr("connectors.slack.SWEEP_INTERVAL_S", TEST_SWEEP_S)
    monkeypatch.setattr("connectors.slack.STOP_GRACE_S", 0.1)


@pytest.fixture(params=["sqlite", "postgres"])
async def open_store(request, tmp_path):
    """Opens the pending events of a replica: in one SQLite file, or in one PostgreSQL database."""
    if request.param == "sqlite":
        yield lambda: PendingEvents(tmp_path / "pending-events.sqlite3", "slack")
        return
    pytest.importorskip("psycopg")
    from connectors.pg_pending_events import PostgresPendingEvents
    from knowledge.database import Database

    database_url = request.getfixturevalue("database_url")
    opened: list[Database] = []

    def open_replica() -> PostgresPendingEvents:
        opened.append(Database(database_url))
        return PostgresPendingEvents(opened[-1], "slack")

    yield open_replica
    for database in opened:
        await database.close()


def _payload(number: int) -> dict:
    return {"keys": [f"event:Ev{number}"], "event": {"text": f"secret question {number}"}}


async def test_a_lapsed_event_is_taken_over_by_one_replica_only(open_store):
    replicas = [open_store() for _ in range(3)]
    for number in range(20):
        await replicas[0].add(f"event:Ev{number}", _payload(number), lease_s=-1)
    await replicas[0].add("event:Ev99", _payload(99), lease_s=60)  # being answered: left alone
    batches = await asyncio.gather(*(r.take_expired(lease_s=60, limit=5) for r in replicas for _ in range(3)))
    taken = [event.key for batch, given_up in batches for event in batch]
    assert sorted(taken) == sorted(f"event:Ev{number}" for number in range(20))
    assert all(event.attempts == 2 and event.payload["keys"] for batch, _ in batches for event in batch)
    assert not any(given_up for _, given_up in batches)


async def test_a_finished_event_is_never_taken_over(open_store):
    replica, other = open_store(), open_store()
    await replica.add("event:Ev1", _payload(1), lease_s=60)
    await replica.renew("event:Ev1", lease_s=60, reply_id="1700000001.000100")
    await replica.finish("event:Ev1")
    await replica.renew("event:Ev1", lease_s=-1)  # a late renewal changes nothing
    await replica.add("event:Ev1", _payload(1), lease_s=-1)  # nor a late redelivery
    assert await other.take_expired(lease_s=60) == ([], [])
    await other.add("event:Ev2", _payload(2), lease_s=-1)
    await other.renew("event:Ev2", lease_s=-1, reply_id="1700000002.000100")
    [taken], _ = await replica.take_expired(lease_s=60)
    assert (taken.key, taken.reply_id, taken.payload) == ("event:Ev2", "1700000002.000100", _payload(2))


async def test_recording_an_event_again_tells_it_was_taken_before_and_where_its_reply_went(open_store):
    replica, other = open_store(), open_store()
    first = await replica.add("event:Ev1", _payload(1), lease_s=-1)
    assert (first.attempts, first.reply_id) == (1, None)
    await replica.renew("event:Ev1", lease_s=-1, reply_id="1700000001.000100")
    again = await other.add("event:Ev1", _payload(1), lease_s=60)  # a redelivery taken after the lease lapsed
    assert (again.key, again.attempts, again.reply_id) == ("event:Ev1", 2, "1700000001.000100")
    await other.finish("event:Ev1")
    assert await replica.add("event:Ev1", _payload(1), lease_s=60) is None  # answered: nothing to go on with


async def test_an_event_every_replica_dies_answering_is_given_up_after_a_few_takeovers(open_store, caplog):
    replica = open_store()
    await replica.add("event:Ev1", _payload(1), lease_s=-1)
    taken_over: list[PendingEvent] = []

    async def dies_answering(event: PendingEvent) -> None:  # takes the event, and never finishes it
        taken_over.append(event)

    # Each takeover's lease lapses at once, as if the replica that took it died at once.
    sweeper = PendingEventSweeper(replica, dies_answering, lease_s=-1)
    resumed = [await sweeper.sweep() for _ in range(MAX_TAKEOVERS + 2)]
    assert resumed == [1] * MAX_TAKEOVERS + [0, 0]
    assert [event.attempts for event in taken_over] == list(range(2, MAX_TAKEOVERS + 2))
    [given_up] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "gave up on event event:Ev1" in given_up.getMessage()
    assert "secret question" not in caplog.text


async def _post(server: HelpdeskServer, payload: dict, retry_num: int = 0) -> int:
    body, headers = signed_request(payload)
    if retry_num:
        headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
    url = f"http://127.0.0.1:{server.port}/slack/events"
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status


@contextlib.asynccontextmanager
async def _serving(settings, bot):
    server = HelpdeskServer(settings, bot)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _acknowledged_and_left(fake: FakeSlack, server: HelpdeskServer) -> tuple[dict, dict]:
    """Post a mention to a replica answering from a model that never finishes, then stop the replica before
    its answer is done (its claim is not renewed any more; nothing is marked answered): the event and the
    placeholder it left."""
    payload = event_callback(mention(fake, QUESTION))
    await server.start()
    assert await _post(server, payload) == 200
    [placeholder] = await fake.wait_for(lambda: fake.bot_messages(CHANNEL))
    await server.stop()
    return payload, placeholder


async def _answered_once_into(fake: FakeSlack, placeholder: dict) -> dict:
    [answer] = await fake.wait_for(lambda: fake.answers(CHANNEL), timeout=20)
    await asyncio.sleep(3 * TEST_LEASE_S)  # leases lapse, sweeps go on: nothing is answered again
    assert fake.answers(CHANNEL) == [answer] and fake.bot_messages(CHANNEL) == [answer]
    assert answer["ts"] == placeholder["ts"]  # written into the placeholder the stopped replica left
    assert len(fake.calls_to("chat.postMessage")) == 1
    return answer


async def test_an_event_a_replica_acknowledged_and_never_answered_is_answered_by_another(
    tmp_path, database_url, helpdesk_bot, quick_takeover
):
    async with (
        FakeSlack() as fake,
        bot_writing(tmp_path, helpdesk_bot, NEVER_FINISHED, delay_s=MODEL_WORD_S) as never_finishing,
    ):
        settings = [
            slack_settings(tmp_path, fake, data_dir=tmp_path / name, database_url=database_url)
            for name in ("dying", "surviving")
        ]
        try:
            async with _serving(settings[1], helpdesk_bot) as survivor:
                payload, placeholder = await _acknowledged_and_left(
                    fake, HelpdeskServer(settings[0], never_finishing)
                )
                answer = await _answered_once_into(fake, placeholder)
                assert await _post(survivor, payload, retry_num=1) == 200  # a late retry: dropped
                await asyncio.sleep(0.5)
                assert fake.answers(CHANNEL) == [answer]
        finally:
            for each in settings:
                await close_database(each)
    assert "Refunds are issued within 14 days" in answer["text"]


async def test_the_restarted_bot_answers_what_it_acknowledged_before_it_stopped(
    tmp_path, helpdesk_bot, quick_takeover
):
    async with (
        FakeSlack() as fake,
        bot_writing(tmp_path, helpdesk_bot, NEVER_FINISHED, delay_s=MODEL_WORD_S) as never_finishing,
    ):
        settings = slack_settings(tmp_path, fake)  # no database: the data dir's files
        payload, placeholder = await _acknowledged_and_left(fake, HelpdeskServer(settings, never_finishing))
        async with _serving(settings, helpdesk_bot) as restarted:
            answer = await _answered_once_into(fake, placeholder)
            assert await _post(restarted, payload, retry_num=1) == 200
            await asyncio.sleep(0.5)
            assert fake.answers(CHANNEL) == [answer]
    assert (settings.data_dir / "pending-events.sqlite3").exists()


async def test_an_answered_event_is_never_answered_again(tmp_path, helpdesk_bot, quick_takeover):
    async with FakeSlack() as fake:
        settings = slack_settings(tmp_path, fake)
        async with _serving(settings, helpdesk_bot) as server:
            assert await _post(server, event_callback(mention(fake, QUESTION))) == 200
            [answer] = await fake.wait_for(lambda: fake.answers(CHANNEL))
        async with _serving(settings, helpdesk_bot):  # restarted: nothing is left to finish
            await asyncio.sleep(3 * TEST_LEASE_S)
    assert fake.answers(CHANNEL) == [answer] and fake.bot_messages(CHANNEL) == [answer]
    assert await PendingEvents(settings.data_dir / "pending-events.sqlite3", "slack").take_expired(60) == (
        [],
        [],
    )


@pytest.mark.parametrize("ts_recorded", [True, False], ids=["its-ts-recorded", "nothing-recorded"])
async def test_an_answer_posted_by_a_replica_that_died_before_recording_it_is_not_posted_again(
    tmp_path, helpdesk_bot, quick_takeover, ts_recorded
):
    async with FakeSlack() as fake:
        settings = slack_settings(tmp_path, fake)
        async with _serving(settings, helpdesk_bot) as server:
            event = mention(fake, QUESTION)
            assert await _post(server, event_callback(event)) == 200
            [answer] = await fake.wait_for(lambda: fake.answers(CHANNEL))
            calls = len(fake.calls)
            # What a replica that posted this answer under another delivery, and died before it recorded the
            # event answered, leaves behind: the event pending, its answer's ts in `reply_id` (or, if it could
            # not record that either, no `reply_id`: the answer is found by its metadata).
            pending = PendingEvents(settings.data_dir / "pending-events.sqlite3", "slack")
            payload = {"keys": ["event:EvDIED"], "event": event, "bot_user_id": BOT_USER_ID}
            await pending.add("event:EvDIED", payload, lease_s=-1)
            if ts_recorded:
                await pending.renew("event:EvDIED", lease_s=-1, reply_id=answer["ts"])
            await asyncio.sleep(3 * TEST_LEASE_S)
    assert [call.method for call in fake.calls[calls:]] == ["conversations.replies"]  # looked, wrote nothing
    assert fake.answers(CHANNEL) == [answer]
    assert await pending.take_expired(60) == ([], [])  # recorded as answered


async def test_a_record_given_up_keeps_no_token(open_store):
    replica = open_store()
    await replica.add("interaction:1", {"question": "secret", "token": "interaction-token-1"}, lease_s=-1)
    taken, [given_up] = await replica.take_expired(lease_s=60, max_takeovers=0)
    assert not taken and given_up.payload == {"question": "secret"}


async def _placeholder_left_unrecorded(
    fake: FakeSlack, server: HelpdeskServer, event: dict, payload: dict | None = None
) -> dict:
    """Post a mention (in `payload`, if given) to a replica that is stopped once Slack posted its placeholder
    and before it heard the placeholder's ts back (so before it could record it): the placeholder it left."""
    before = len(fake.bot_messages(CHANNEL))
    fake.hold("chat.postMessage")
    await server.start()
    assert await _post(server, payload or event_callback(event)) == 200
    [placeholder] = await fake.wait_for(lambda: fake.bot_messages(CHANNEL)[before:])
    await server.stop()
    fake.release()
    return placeholder


async def test_a_placeholder_posted_by_a_replica_that_died_before_recording_it_gets_the_answer(
    tmp_path, helpdesk_bot, quick_takeover
):
    async with FakeSlack() as fake:
        settings = slack_settings(tmp_path, fake)
        # Another question of the same thread, which a replica is still answering: its placeholder stays.
        earlier = mention(fake, "What is the refund window?")
        other = fake.add_message(
            CHANNEL,
            "Looking that up…",
            user=BOT_USER_ID,
            thread_ts=earlier["ts"],
            metadata=reply_metadata(earlier["ts"]),
        )
        event = mention(fake, QUESTION, thread_ts=earlier["ts"])
        placeholder = await _placeholder_left_unrecorded(fake, HelpdeskServer(settings, helpdesk_bot), event)
        async with _serving(settings, helpdesk_bot):  # another replica (here: the bot restarted) takes over
            [answer] = await fake.wait_for(lambda: fake.answers(CHANNEL), timeout=20)
            await asyncio.sleep(3 * TEST_LEASE_S)  # leases lapse, sweeps go on: nothing is answered again
    assert fake.bot_messages(CHANNEL) == [other, answer]
    assert answer["ts"] == placeholder["ts"] and len(fake.calls_to("chat.postMessage")) == 1
    assert "Refunds are issued within 14 days" in answer["text"]
    assert answer["metadata"]["event_payload"]["question_ts"] == event["ts"]


async def test_a_redelivery_taken_after_its_replica_died_answers_in_the_placeholder_that_replica_left(
    tmp_path, helpdesk_bot, quick_takeover, monkeypatch
):
    async with FakeSlack() as fake:
        settings = slack_settings(tmp_path, fake)
        event = mention(fake, QUESTION)
        delivery = event_callback(event)
        placeholder = await _placeholder_left_unrecorded(
            fake, HelpdeskServer(settings, helpdesk_bot), event, delivery
        )
        # The restarted bot sweeps once at start, before the lease lapses, and not again: Slack's retry of
        # the event comes first and is taken like a new delivery.
        monkeypatch.setattr("connectors.slack.SWEEP_INTERVAL_S", 3600)
        async with _serving(settings, helpdesk_bot) as server:
            await asyncio.sleep(1.5 * TEST_LEASE_S)
            assert await _post(server, delivery) == 200
            [answer] = await fake.wait_for(lambda: fake.answers(CHANNEL), timeout=20)
    assert fake.bot_messages(CHANNEL) == [answer] and answer["ts"] == placeholder["ts"]
    assert "Refunds are issued within 14 days" in answer["text"]
