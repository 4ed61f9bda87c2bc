""" "Ask a human" on Slack: the click posts in the escalation channel with the one configured mention."""

from __future__ import annotations

import aiohttp
import pytest
from fake_slack import (
    ASKER,
    CHANNEL,
    FakeSlack,
    block_action,
    event_callback,
    mention,
    signed_request,
    slack_settings,
)

from bot.models import Answer
from connectors.server import HelpdeskServer
from connectors.slack_handoff import ASKED
from connectors.slack_render import ESCALATION_ACTION, render

ESCALATION_CHANNEL = "C0ESCALATE"
RESPONDERS = "<!subteam^S0SUPPORT>"


@pytest.fixture
async def fake_slack():
    async with FakeSlack() as fake:
        yield fake


async def _serve(tmp_path, fake_slack, bot, **settings):
    server = HelpdeskServer(slack_settings(tmp_path, fake_slack, **settings), bot)
    await server.start()
    return server, aiohttp.ClientSession(f"http://127.0.0.1:{server.port}")


async def _post(session, payload: dict, **signing) -> int:
    body, headers = signed_request(payload, **signing)
    async with session.post("/slack/events", data=body, headers=headers) as response:
        return response.status


async def _ask(session, fake_slack, question: str) -> dict:
    event = mention(fake_slack, question)
    assert await _post(session, event_callback(event)) == 200
    return (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL)))[-1]


def _buttons(message: dict) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_ask_a_human_posts_the_question_and_answer_pinging_the_responders(
    tmp_path, fake_slack, helpdesk_bot
):
    server, session = await _serve(
        tmp_path,
        fake_slack,
        helpdesk_bot,
        slack_escalation_channel=ESCALATION_CHANNEL,
        slack_escalation_mention=RESPONDERS,
    )
    try:
        answer = await _ask(session, fake_slack, "How do I start a refund? <!channel>")
        assert _buttons(answer) == ["feedback_up", "feedback_down", ESCALATION_ACTION]
        answer_id = answer["metadata"]["event_payload"]["answer_id"]

        click = block_action(answer, ESCALATION_ACTION, user=ASKER)
        body, headers = signed_request(click, form=True)
        async with session.post("/slack/events", data=body, headers=headers) as response:
            assert response.status == 200
        [post] = await fake_slack.wait_for(lambda: fake_slack.messages.get(ESCALATION_CHANNEL))
    finally:
        await session.close()
        await server.stop()

    text = post["text"]
    assert text.startswith(f"{RESPONDERS} <@{ASKER}> asked for a person")
    assert "How do I start a refund?" in text and "Refunds are issued within 14 days" in text
    assert f"<https://acme.slack.example/archives/{CHANNEL}/p{answer['ts']}|Open the conversation>" in text
    # The configured responders and the asker are the only mentions: nothing from the question pings anyone.
    assert "<!channel>" not in text and text.count("<!") == 1 and "@channel" not in text
    assert "thread_ts" not in post
    # The asker sees under the answer that a person was asked; the votes stay.
    updated = await fake_slack.wait_for(lambda: ASKED in str(answer["blocks"]) and answer)
    assert _buttons(updated) == ["feedback_up", "feedback_down"]
    [escalation] = (await helpdesk_bot.journal.activity_since(0))["escalations"]
    assert escalation["answer_id"] == answer_id and escalation["requested_by"] == ASKER
    assert escalation["platform"] == "slack" and escalation["posted_to"] == ESCALATION_CHANNEL


async def test_without_an_escalation_channel_there_is_no_ask_a_human_button(
    tmp_path, fake_slack, helpdesk_bot
):
    server, session = await _serve(tmp_path, fake_slack, helpdesk_bot)
    try:
        answer = await _ask(session, fake_slack, "How do I start a refund?")
    finally:
        await session.close()
        await server.stop()
    assert ESCALATION_ACTION not in _buttons(answer)


def test_refusals_offer_ask_a_human_too():
    refusal = Answer(
        "I couldn't find an answer to this in the knowledge base.", [], refused=True, confidence=0.1
    )
    message = render(refusal, escalation=True)
    assert [
        e["value"] for b in message.blocks if b.get("block_id") == "escalation" for e in b["elements"]
    ] == [refusal.id]
