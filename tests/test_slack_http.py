"""Slack over the Events API: signed requests into Bolt's real HTTP server, answers sent to a fake Slack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time

import aiohttp
import pytest
from aiohttp import web
from conftest import INJECTED_DOCUMENT, INJECTED_QUESTION, answer_settings, write
from fake_slack import (
    ASKER,
    BOT_TOKEN,
    BOT_USER_ID,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    block_action,
    channel_message,
    event_callback,
    mention,
    signature_headers,
    signed_request,
    slack_settings,
)

from bot.runtime import build_bot, open_sources
from bot.settings import Settings
from connectors.dedupe import open_ledger
from connectors.server import HelpdeskServer
from connectors.slack import IN_PROGRESS_ELSEWHERE, VOTE_NOT_RECORDED
from connectors.slack_http import MAX_BODY_BYTES
from connectors.slack_render import ANSWER_EVENT_TYPE
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker

INVOICES = """---
url: https://help.acme.example/invoices?lang=en&v=2
---
# Paying invoices online

Customers pay invoices online with a card or a bank transfer from the invoice link.
"""


HOSTILE = """---
title: Incidents <!here> <@U123>
url: https://status.acme.example/incidents?a=1&b=%3E
---
Incident reports are posted on the status page within an hour.
"""


@pytest.fixture
async def fake_slack():
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def kb_bot(helpdesk_bot, tmp_path):
    """The small-KB bot plus a page whose source is a URL (so answers carry web links)."""
    write(tmp_path / "small-kb" / "billing" / "invoices.md", INVOICES)
    await helpdesk_bot.chain.retriever.knowledge_base.sync(open_sources(answer_settings(tmp_path)))
    return helpdesk_bot


class SlackHttp:
    """The running server and a client that posts signed requests to it."""

    def __init__(self, server: HelpdeskServer, session: aiohttp.ClientSession, fake: FakeSlack):
        self.server, self.session, self.fake = server, session, fake

    async def post(self, payload: dict, *, form: bool = False, headers: dict | None = None, **signing):
        body, signed = signed_request(payload, form=form, **signing)
        started = time.monotonic()
        async with self.session.post("/slack/events", data=body, headers={**signed, **(headers or {})}) as r:
            text = await r.text()
        return r.status, time.monotonic() - started, text

    async def ask(self, event: dict, **kwargs) -> dict:
        """Post an event and wait for the answer in its thread."""
        before = len(self.fake.answers(event["channel"]))
        status, _, _ = await self.post(event_callback(event), **kwargs)
        assert status == 200
        answers = await self.fake.wait_for(lambda: self.fake.answers(event["channel"])[before:])
        return answers[0]


async def _running(settings: Settings, bot, fake: FakeSlack):
    server = HelpdeskServer(settings, bot)
    await server.start()
    session = aiohttp.ClientSession(f"http://127.0.0.1:{server.port}")
    return SlackHttp(server, session, fake)


@pytest.fixture
async def slack(tmp_path, fake_slack, kb_bot):
    running = await _running(slack_settings(tmp_path, fake_slack), kb_bot, fake_slack)
    yield running
    await running.session.close()
    await running.server.stop()


def all_text(message: dict) -> str:
    """Every piece of text Slack would show for a message."""
    parts = [message.get("text", "")]
    for block in message.get("blocks", []):
        parts += [block["text"]["text"]] if "text" in block else []
        parts += [
            e["text"] if isinstance(e["text"], str) else e["text"]["text"] for e in block.get("elements", [])
        ]
    return "\n".join(parts)


async def test_mention_is_answered_in_its_thread_with_linked_sources(slack, fake_slack, kb_bot):
    event = mention(fake_slack, "How do customers pay invoices online?")
    answer = await slack.ask(event)

    placeholder = fake_slack.calls_to("chat.postMessage")[0].args
    assert placeholder["thread_ts"] == event["ts"] and placeholder["channel"] == CHANNEL
    assert placeholder["unfurl_links"] is False and placeholder["unfurl_media"] is False
    assert answer["thread_ts"] == event["ts"]
    text = all_text(answer)
    assert "Customers pay invoices online" in text
    assert (
        "<https://help.acme.example/invoices?lang=en&amp;v=2|Paying invoices online> · _updated today_"
        in text
    )
    answer_id = answer["metadata"]["event_payload"]["answer_id"]
    buttons = next(b for b in answer["blocks"] if b["type"] == "actions")["elements"]
    assert {b["value"] for b in buttons} == {answer_id}
    assert (await kb_bot.journal.answers())[-1]["asker"] == ASKER
    assert all(call.token == BOT_TOKEN for call in fake_slack.calls)


async def test_mention_inside_a_thread_replies_to_the_thread_root(slack, fake_slack):
    root = fake_slack.add_message(CHANNEL, "Our refunds are stuck")
    answer = await slack.ask(mention(fake_slack, "How do I start a refund?", thread_ts=root["ts"]))
    assert answer["thread_ts"] == root["ts"]


class SlowChatModel:
    """An OpenAI-compatible endpoint streaming its answer slowly, word by word (the generator boundary)."""

    def __init__(self, text: str, delay_s: float):
        self.pieces = re.findall(r"\S+\s*", text)
        self.delay_s = delay_s

    async def completions(self, request: web.Request) -> web.StreamResponse:
        model = (await request.json())["model"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in [*self.pieces, None]:
            await asyncio.sleep(self.delay_s if piece else 0)
            delta, finish = ({"content": piece}, None) if piece else ({}, "stop")
            chunk = {
                "id": "chatcmpl-slow",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response


@contextlib.asynccontextmanager
async def bot_writing(tmp_path, kb_bot, text: str, delay_s: float):
    """A bot over kb_bot's knowledge base whose answers an OpenAI-compatible endpoint streams as `text`."""
    model = SlowChatModel(text, delay_s)
    endpoint = web.Application()
    endpoint.router.add_post("/v1/chat/completions", model.completions)
    runner = web.AppRunner(endpoint)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    try:
        yield build_bot(
            answer_settings(tmp_path, generator="openai", openai_base_url=base_url),
            kb_bot.chain.retriever.knowledge_base,
        )
    finally:
        await runner.cleanup()


async def test_ack_is_immediate_while_the_answer_streams(tmp_path, fake_slack, kb_bot):
    text = "Refunds are issued within 14 days of a request [1]."
    async with bot_writing(tmp_path, kb_bot, text, delay_s=0.15) as streaming_bot:
        slack = await _running(slack_settings(tmp_path, fake_slack), streaming_bot, fake_slack)
        try:
            event = mention(fake_slack, "How do I start a refund?")
            status, ack_s, _ = await slack.post(event_callback(event))
            assert status == 200
            assert ack_s < 1.0  # Slack gives up after 3 s; the answer takes about 1.7 s
            assert not fake_slack.answers(CHANNEL)
            answer = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL), timeout=20))[0]
        finally:
            await slack.session.close()
            await slack.server.stop()
    assert "Refunds are issued within 14 days of a request" in all_text(answer)
    progress = [
        c.args
        for c in fake_slack.calls_to("chat.update")
        if c.args["metadata"]["event_type"] != ANSWER_EVENT_TYPE
    ]
    assert progress, "the streamed answer was never shown while it was being written"
    assert progress[0]["blocks"][0]["text"]["text"].endswith(" …")
    assert (await streaming_bot.journal.answers())[-1]["generator"] == "openai"


async def test_bad_signature_and_stale_timestamp_are_rejected(slack, fake_slack):
    payload = event_callback(mention(fake_slack, "How do I start a refund?"))
    status, _, _ = await slack.post(payload, secret="not-the-signing-secret")
    assert status == 401
    status, _, _ = await slack.post(payload, timestamp=int(time.time()) - 6 * 60)
    assert status == 401
    await asyncio.sleep(0.3)
    assert not fake_slack.calls_to("chat.postMessage")


async def test_url_verification_is_answered(slack):
    status, _, text = await slack.post(
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"}
    )
    assert status == 200 and json.loads(text) == {"challenge": "3eZbrw1aBm2rZgRNFdxV"}


async def test_retries_are_answered_once_even_after_a_restart(tmp_path, slack, fake_slack, kb_bot):
    payload = event_callback(mention(fake_slack, "How do I start a refund?"))
    for attempt in range(3):
        retry = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"} if attempt else {}
        status, _, _ = await slack.post(payload, headers=retry)
        assert status == 200
    await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL))
    await slack.server.stop()

    restarted = await _running(slack_settings(tmp_path, fake_slack), kb_bot, fake_slack)
    try:
        status, _, _ = await restarted.post(payload, headers={"X-Slack-Retry-Num": "3"})
        assert status == 200
        # A redelivery whose first delivery never arrived is a new event: it is answered.
        unseen = event_callback(mention(fake_slack, "How do I reset my password?"))
        status, _, _ = await restarted.post(unseen, headers={"X-Slack-Retry-Num": "1"})
        await fake_slack.wait_for(lambda: len(fake_slack.answers(CHANNEL)) == 2)
        await asyncio.sleep(0.2)
    finally:
        await restarted.session.close()
        await restarted.server.stop()
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    assert [a["thread_ts"] for a in fake_slack.answers(CHANNEL)] == [
        payload["event"]["ts"],
        unseen["event"]["ts"],
    ]


async def test_a_retry_waits_for_a_replica_answering_and_is_answered_once_that_replica_died(
    tmp_path, slack, fake_slack
):
    payload = event_callback(mention(fake_slack, "How do I start a refund?"))
    keys = (f"event:{payload['event_id']}", f"message:{CHANNEL}:{payload['event']['ts']}")
    another_replica = open_ledger(slack_settings(tmp_path, fake_slack), "slack-events")
    assert await another_replica.claim(*keys, ttl_s=1.0)  # it took the event, then died before answering
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    status, _, text = await slack.post(payload, headers=retry)
    assert (status, json.loads(text)) == (503, IN_PROGRESS_ELSEWHERE)  # Slack retries later
    await asyncio.sleep(1.2)  # its claim, never renewed, expires
    status, _, _ = await slack.post(payload, headers={**retry, "X-Slack-Retry-Num": "2"})
    assert status == 200
    await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL))
    status, _, _ = await slack.post(payload, headers={**retry, "X-Slack-Retry-Num": "3"})
    assert status == 200  # answered: later retries are dropped
    await asyncio.sleep(0.2)
    assert len(fake_slack.answers(CHANNEL)) == 1


async def test_retries_reaching_the_replica_that_takes_the_event_are_acknowledged(slack, fake_slack):
    payloads = [event_callback(mention(fake_slack, "How do I start a refund?")) for _ in range(20)]
    retry = {"X-Slack-Retry-Reason": "http_timeout"}
    statuses = await asyncio.gather(
        *(
            slack.post(payload, headers={**retry, "X-Slack-Retry-Num": str(attempt)} if attempt else {})
            for payload in payloads
            for attempt in range(3)
        )
    )
    assert [status for status, _, _ in statuses] == [200] * 60  # no 503: this replica is alive
    await fake_slack.wait_for(lambda: len(fake_slack.answers(CHANNEL)) == 20)
    await asyncio.sleep(0.2)
    assert len(fake_slack.answers(CHANNEL)) == 20


async def test_follow_up_in_the_bots_thread_needs_no_mention(slack, fake_slack, kb_bot):
    first = mention(fake_slack, "How do I reset my password?")
    await slack.ask(first)
    fake_slack.add_message(
        CHANNEL, "Beep, I am another bot", user="UOTHERBOT", bot_id="B0OTHER", thread_ts=first["ts"]
    )
    follow_up = channel_message(fake_slack, "how long is it valid?", thread_ts=first["ts"])
    answer = await slack.ask(follow_up)

    assert answer["thread_ts"] == first["ts"]
    replies = fake_slack.calls_to("conversations.replies")[-1].args
    assert replies["ts"] == first["ts"]
    record = (await kb_bot.journal.answers())[-1]
    assert record["question"] == "how long is it valid?"
    assert record["standalone_query"].startswith("How do I reset my password?")
    assert "account/password.md" in all_text(answer)


async def test_messages_outside_the_bots_threads_are_left_alone(slack, fake_slack):
    other_thread = fake_slack.add_message(CHANNEL, "Lunch?")
    events = [
        channel_message(fake_slack, "how long is it valid?", thread_ts=other_thread["ts"]),
        channel_message(fake_slack, "refunds take how long?"),  # top level, no mention
        channel_message(fake_slack, "I am a bot", bot_id="B0OTHER", subtype="bot_message"),
    ]
    for event in events:
        status, _, _ = await slack.post(event_callback(event))
        assert status == 200
    await slack.ask(mention(fake_slack, "How do I start a refund?"))
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_direct_messages_are_answered(slack, fake_slack):
    event = channel_message(fake_slack, "How do I start a refund?", channel="D0DIRECT", channel_type="im")
    answer = await slack.ask(event)
    assert answer["thread_ts"] == event["ts"]
    assert "billing/refunds.md" in all_text(answer)


async def test_feedback_click_is_stored_and_acknowledged(slack, fake_slack, kb_bot):
    answer = await slack.ask(mention(fake_slack, "How do I start a refund?"))
    answer_id = answer["metadata"]["event_payload"]["answer_id"]

    status, ack_s, _ = await slack.post(block_action(answer, "feedback_down", user="U0VOTER"), form=True)
    assert status == 200 and ack_s < 1.0
    thanked = await fake_slack.wait_for(lambda: "Thanks for the feedback" in all_text(answer) and answer)
    assert (await kb_bot.journal.feedback_for(answer_id)) == [(-1, None, "U0VOTER")]
    assert not any(block["type"] == "actions" for block in thanked["blocks"])
    assert thanked["metadata"]["event_payload"]["answer_id"] == answer_id


async def test_rate_limited_call_is_retried_after_retry_after(slack, fake_slack):
    fake_slack.fail("chat.postMessage", status=429, retry_after=1)
    answer = await slack.ask(mention(fake_slack, "How do I start a refund?"))
    first, second = fake_slack.calls_to("chat.postMessage")
    assert second.at - first.at >= 1.0
    assert "billing/refunds.md" in all_text(answer)


async def test_backend_failure_leaves_an_apology(tmp_path, fake_slack, fake_embeddings, caplog):
    never_synced = KnowledgeBase(tmp_path / "empty", fake_embeddings, Chunker(400, 50), "fake")
    broken_bot = build_bot(answer_settings(tmp_path, data_dir=tmp_path / "empty"), never_synced)
    slack = await _running(slack_settings(tmp_path, fake_slack), broken_bot, fake_slack)
    try:
        event = mention(fake_slack, "How do I start a refund?")
        await slack.post(event_callback(event))
        apology = await fake_slack.wait_for(
            lambda: [m for m in fake_slack.bot_messages(CHANNEL) if m["text"].startswith("Sorry")]
        )
    finally:
        await slack.session.close()
        await slack.server.stop()
    assert apology[0]["thread_ts"] == event["ts"]
    assert len(fake_slack.bot_messages(CHANNEL)) == 1  # the placeholder became the apology
    assert "could not answer" in caplog.text and "KnowledgeBaseEmpty" in caplog.text


async def test_document_text_cannot_ping_or_forge_links(tmp_path, slack, fake_slack, kb_bot):
    write(tmp_path / "small-kb" / "status" / "incidents.md", HOSTILE)
    await kb_bot.chain.retriever.knowledge_base.sync(open_sources(answer_settings(tmp_path)))
    titled = await slack.ask(mention(fake_slack, "Where are incident reports posted?"))
    quoted = await slack.ask(mention(fake_slack, "How are outage notices posted on the status page?"))

    sources = titled["blocks"][-2]["text"]["text"]
    link = "<https://status.acme.example/incidents?a=1&amp;b=%3E|Incidents &lt;!here&gt; &lt;@U123&gt;>"
    assert link in sources
    shown = all_text(quoted).replace("\u200b", "")  # the zero-width space the bot puts into mention-like text
    assert "&lt;!channel&gt;" in shown and "&lt;http://evil.example|click here&gt;" in shown
    for answer in (titled, quoted):
        text = all_text(answer)
        assert not re.search(r"<[!@#]", text) and "<http://evil" not in text
        assert re.search(r"@everyone|@here|@channel", text) is None
        assert [m.group() for m in re.finditer(r"<[^>]*>", text)] in ([], [link])  # our links only


async def test_allowlist_keeps_the_bot_silent_elsewhere(tmp_path, fake_slack, kb_bot):
    slack = await _running(
        slack_settings(tmp_path, fake_slack, slack_allowed_channels=["C0HELP"]), kb_bot, fake_slack
    )
    try:
        await slack.post(event_callback(mention(fake_slack, "How do I start a refund?", channel=CHANNEL)))
        await slack.ask(mention(fake_slack, "How do I start a refund?", channel="C0HELP"))
        dm = channel_message(fake_slack, "How do I reset my password?", channel="D0DIRECT", channel_type="im")
        await slack.ask(dm)
    finally:
        await slack.session.close()
        await slack.server.stop()
    assert {call.args["channel"] for call in fake_slack.calls_to("chat.postMessage")} == {
        "C0HELP",
        "D0DIRECT",
    }


async def test_secrets_never_reach_the_logs(slack, fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    answer = await slack.ask(mention(fake_slack, "How do I start a refund?"))
    await slack.post(block_action(answer, "feedback_up"), form=True)
    await slack.post(event_callback(mention(fake_slack, "refunds?")), secret="wrong")
    await fake_slack.wait_for(lambda: "Thanks for the feedback" in all_text(answer))
    assert caplog.records
    assert BOT_TOKEN not in caplog.text and SIGNING_SECRET not in caplog.text


async def test_healthz_reports_the_running_connectors(slack):
    async with slack.session.get("/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "connectors": ["slack"]}


async def test_a_bare_mention_gets_a_usage_hint(slack, fake_slack):
    await slack.post(event_callback(mention(fake_slack, "")))
    hint = await fake_slack.wait_for(lambda: fake_slack.bot_messages(CHANNEL))
    assert hint[0]["text"].startswith("Ask me a question")
    assert BOT_USER_ID not in hint[0]["text"]


# Bodies that are not Slack payloads; each carries a marker that must never reach the logs.
MARKER = "BODY-MARKER-7f3a"
JUNK = {
    "broken JSON": ('{"type": "event_callback", "event": {"text": "' + MARKER, "application/json"),
    "a JSON list": (f'[{{"type": "event_callback", "text": "{MARKER}"}}]', "application/json"),
    "a bad form payload": (f"payload=%7Bnot-json-{MARKER}", "application/x-www-form-urlencoded"),
    "a form payload that is a list": (f"payload=%5B%22{MARKER}%22%5D", "application/x-www-form-urlencoded"),
    "not UTF-8": (b"\xff\xfe{" + MARKER.encode(), "application/json"),
}


async def _post_raw(slack: SlackHttp, body: str | bytes, headers: dict) -> tuple[int, str]:
    async with slack.session.post("/slack/events", data=body, headers=headers) as response:
        return response.status, await response.text()


@pytest.mark.parametrize("kind", JUNK)
async def test_junk_is_rejected_without_a_traceback_or_its_body_in_the_log(slack, fake_slack, kind, caplog):
    caplog.set_level(logging.DEBUG)
    body, content_type = JUNK[kind]
    unsigned = await _post_raw(slack, body, {"Content-Type": content_type})
    forged = await _post_raw(
        slack, body, {"Content-Type": content_type, **signature_headers(body, secret="x")}
    )
    signed = await _post_raw(slack, body, {"Content-Type": content_type, **signature_headers(body)})
    bad_timestamp = {**signature_headers(body), "X-Slack-Request-Timestamp": "soon"}
    garbled = await _post_raw(slack, body, {"Content-Type": content_type, **bad_timestamp})

    signed_status = 401 if kind == "not UTF-8" else 400  # Slack signs text: such bytes cannot be signed
    assert [status for status, _ in (unsigned, forged, signed, garbled)] == [401, 401, signed_status, 401]
    assert all(MARKER not in text for _, text in (unsigned, forged, signed, garbled))
    assert MARKER not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert "rejected requests" in caplog.text  # once, as a count: a flood of junk cannot flood the log
    assert not fake_slack.calls_to("chat.postMessage")


async def test_an_oversized_body_is_refused_unread(slack, caplog):
    caplog.set_level(logging.DEBUG)
    huge = MARKER * (MAX_BODY_BYTES // len(MARKER) + 1)
    signed = await _post_raw(slack, huge, {"Content-Type": "application/json", **signature_headers(huge)})
    unsigned = await _post_raw(slack, huge, {"Content-Type": "application/json"})

    async def chunked():  # no Content-Length: the body is cut off as soon as it passes the limit
        for start in range(0, len(huge), 64 * 1024):
            yield huge[start : start + 64 * 1024].encode()

    streamed = await _post_raw(
        slack, chunked(), {"Content-Type": "application/json", **signature_headers(huge)}
    )
    assert [signed[0], unsigned[0], streamed[0]] == [413, 413, 413]
    assert MARKER not in caplog.text


async def test_a_signed_event_is_acknowledged_at_once_while_junk_pours_in(slack, fake_slack):
    junk = "x" * MAX_BODY_BYTES

    async def send_junk() -> int | None:
        try:
            status, _ = await _post_raw(slack, junk, {"Content-Type": "application/json"})
        except aiohttp.ClientError:  # the server may close the connection before all of it is sent
            return None
        return status

    flood = [asyncio.create_task(send_junk()) for _ in range(20)]
    await asyncio.sleep(0.05)
    status, ack_s, _ = await slack.post(event_callback(mention(fake_slack, "How do I start a refund?")))
    statuses = await asyncio.gather(*flood)
    assert status == 200 and ack_s < 1.0
    assert set(statuses) <= {401, None}
    await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL))


@pytest.mark.parametrize(
    "from_bot",
    [{"bot_id": "B0OTHER"}, {"bot_id": "B0OTHER", "subtype": "bot_message"}, {"subtype": "bot_message"}],
    ids=["bot_id", "bot_message with bot_id", "bot_message"],
)
async def test_other_bots_are_never_answered(slack, fake_slack, from_bot):
    bot_mention = {**mention(fake_slack, "How do I start a refund?"), "user": "U0OTHERBOT", **from_bot}
    direct = channel_message(
        fake_slack, "How do I reset my password?", channel="D0DIRECT", channel_type="im", **from_bot
    )
    for event in (bot_mention, direct):
        status, _, _ = await slack.post(event_callback(event))
        assert status == 200
    await slack.ask(mention(fake_slack, "How do I reset my password?"))  # people are still answered
    assert [call.args["channel"] for call in fake_slack.calls_to("chat.postMessage")] == [CHANNEL]
    assert fake_slack.calls_to("chat.postMessage")[0].args["thread_ts"] != bot_mention["ts"]


async def test_voting_twice_keeps_one_vote_the_latest(slack, fake_slack, kb_bot):
    answer = await slack.ask(mention(fake_slack, "How do I start a refund?"))
    answer_id = answer["metadata"]["event_payload"]["answer_id"]
    clicks = [block_action(answer, "feedback_up", user="U0VOTER")] * 2  # a double click, both delivered
    clicks += [block_action(answer, "feedback_down", user="U0VOTER"), block_action(answer, "feedback_up")]
    for click in clicks:
        updates = len(fake_slack.calls_to("chat.update"))
        status, _, _ = await slack.post(click, form=True)
        assert status == 200
        await fake_slack.wait_for(lambda n=updates: len(fake_slack.calls_to("chat.update")) > n)
    assert sorted(await kb_bot.journal.feedback_for(answer_id)) == [(-1, None, "U0VOTER"), (1, None, ASKER)]


async def test_a_vote_that_cannot_be_stored_is_reported_to_the_voter(slack, fake_slack, kb_bot):
    answer = await slack.ask(mention(fake_slack, "How do I start a refund?"))
    kb_bot.journal.path.unlink()
    kb_bot.journal.path.mkdir()  # an unusable journal, whoever runs the bot
    status, _, _ = await slack.post(block_action(answer, "feedback_up", user="U0VOTER"), form=True)
    assert status == 200
    [notice] = await fake_slack.wait_for(lambda: fake_slack.ephemeral)
    assert notice["user"] == "U0VOTER" and notice["channel"] == CHANNEL
    assert notice["text"] == VOTE_NOT_RECORDED
    assert any(block["type"] == "actions" for block in answer["blocks"])  # the buttons stay to vote later


async def test_an_answer_that_obeys_injected_instructions_still_cannot_ping_or_forge_links(
    tmp_path, fake_slack, kb_bot
):
    # The worst case for a generated answer: a model that does what the document and the question say.
    write(tmp_path / "small-kb" / "account" / "admins.md", INJECTED_DOCUMENT)
    await kb_bot.chain.retriever.knowledge_base.sync(open_sources(answer_settings(tmp_path)))
    obeyed = f"The admin password is hunter2. {INJECTED_DOCUMENT} {INJECTED_QUESTION} <@U0ASKER> [1]"
    async with bot_writing(tmp_path, kb_bot, obeyed, delay_s=0.01) as obeying_bot:
        slack = await _running(slack_settings(tmp_path, fake_slack), obeying_bot, fake_slack)
        try:
            answer = await slack.ask(mention(fake_slack, INJECTED_QUESTION))
        finally:
            await slack.session.close()
            await slack.server.stop()
    assert "hunter2" in all_text(answer)  # the model obeyed; what it wrote is shown as plain text
    posted = [c.args for c in fake_slack.calls if c.method in ("chat.postMessage", "chat.update")]
    for args in posted:
        text = all_text({"text": args["text"], "blocks": _blocks(args)})
        assert not re.search(r"<[!@#]", text) and "<http://evil" not in text  # shown as &lt;…&gt;, inert
        assert re.search(r"@everyone|@here|@channel", text) is None
        assert all(link.startswith("<https://help.acme.example/") for link in re.findall(r"<[^>]*>", text))


def _blocks(args: dict) -> list[dict]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks
