"""Slack over Socket Mode: envelopes pushed by a fake Slack WebSocket are acked at once and answered once."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    CHANNEL,
    FakeSlack,
    block_action,
    event_callback,
    free_port,
    mention,
)

from bot.settings import Settings
from connectors.server import ConnectorFailed, HelpdeskServer


@pytest.fixture
async def fake_slack():
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def socket_server(tmp_path, fake_slack, helpdesk_bot):
    settings = Settings(
        data_dir=tmp_path / "server-data",
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=fake_slack.api_url,
        http_host="127.0.0.1",
        http_port=free_port(),
    )
    server = HelpdeskServer(settings, helpdesk_bot)
    await server.start()
    yield server
    await server.stop()


async def test_envelope_is_acked_at_once_and_answered_once(socket_server, fake_slack, caplog):
    caplog.set_level(logging.DEBUG)
    assert fake_slack.calls_to("apps.connections.open")[0].token == APP_TOKEN
    event = mention(fake_slack, "How do I start a refund?")
    payload = event_callback(event)

    ack_s = await fake_slack.send_envelope(payload)
    assert ack_s < 1.0
    answer = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL)))[0]
    assert answer["thread_ts"] == event["ts"]
    assert "billing/refunds.md" in answer["blocks"][-2]["text"]["text"]

    assert await fake_slack.send_envelope(payload, retry_attempt=1) < 1.0
    await asyncio.sleep(0.3)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert APP_TOKEN not in caplog.text and BOT_TOKEN not in caplog.text


async def test_feedback_click_arrives_over_the_socket(socket_server, fake_slack, helpdesk_bot):
    await fake_slack.send_envelope(event_callback(mention(fake_slack, "How do I reset my password?")))
    answer = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL)))[0]
    answer_id = answer["metadata"]["event_payload"]["answer_id"]

    await fake_slack.send_envelope(block_action(answer, "feedback_up", user="U0FAN"), kind="interactive")
    await fake_slack.wait_for(lambda: helpdesk_bot.journal.feedback_for(answer_id))
    assert await helpdesk_bot.journal.feedback_for(answer_id) == [(1, None, "U0FAN")]


async def test_socket_mode_serves_no_events_endpoint(socket_server):
    async with aiohttp.ClientSession(f"http://127.0.0.1:{socket_server.port}") as session:
        async with session.post("/slack/events", data="{}") as response:
            assert response.status in (404, 405)
        async with session.get("/healthz") as response:
            assert (await response.json())["connectors"] == ["slack"]


async def test_a_rejected_app_token_is_explained(tmp_path, fake_slack, helpdesk_bot):
    settings = Settings(
        data_dir=tmp_path / "server-data",
        slack_bot_token=BOT_TOKEN,
        slack_app_token="xapp-revoked",
        slack_api_url=fake_slack.api_url,
        http_host="127.0.0.1",
        http_port=free_port(),
    )
    with pytest.raises(ConnectorFailed, match=r"Slack rejected SLACK_APP_TOKEN \(invalid_auth\)"):
        await HelpdeskServer(settings, helpdesk_bot).start()
