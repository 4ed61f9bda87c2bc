"""Answers learnt from people on Slack: a trusted reply is offered privately, saved, then answered from."""

from __future__ import annotations

import json

import aiohttp
import pytest
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

from connectors.server import HelpdeskServer
from connectors.slack_learning import NOT_TRUSTED, SAVE_ACTION
from connectors.slack_render import ESCALATION_ACTION
from knowledge.sources.learnt import LearntAnswers

SUPPORT = "U0DANA"
SUPPORT_GROUP = "S0SUPPORT"
STRANGER = "U0STRANGER"
QUESTION = "Can I pay in bitcoin?"
REPLY = "Yes: bitcoin payments go through Coinbase Commerce <!channel> at checkout.\n\nPick *Crypto*."


@pytest.fixture
async def fake_slack():
    async with FakeSlack() as fake:
        fake.profiles[SUPPORT] = {"display_name": "Dana <@U0X>", "real_name": "Dana Scully"}
        fake.usergroups[SUPPORT_GROUP] = [SUPPORT]
        yield fake


async def _post(session, payload: dict, *, form: bool = False) -> None:
    body, headers = signed_request(payload, form=form)
    async with session.post("/slack/events", data=body, headers=headers) as response:
        assert response.status == 200


def _offers(fake: FakeSlack, user: str) -> list[dict]:
    return [e for e in fake.ephemeral if e["user"] == user and SAVE_ACTION in str(e.get("blocks", ""))]


async def test_a_trusted_reply_is_saved_privately_and_then_answers_the_question_citing_its_author(
    tmp_path, fake_slack, helpdesk_bot
):
    settings = slack_settings(
        tmp_path,
        fake_slack,
        data_dir=helpdesk_bot.chain.retriever.knowledge_base.data_dir,  # where the bot keeps what it learns
        slack_escalation_channel="C0ESCALATE",
        slack_trusted_users=[SUPPORT_GROUP],
    )
    server = HelpdeskServer(settings, helpdesk_bot)
    await server.start()
    session = aiohttp.ClientSession(f"http://127.0.0.1:{server.port}")
    try:
        question = mention(fake_slack, QUESTION)
        await _post(session, event_callback(question))
        [answer] = await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL))
        await _post(session, block_action(answer, ESCALATION_ACTION), form=True)
        await fake_slack.wait_for(escalations_of(helpdesk_bot.journal))

        # Someone untrusted replies: no offer. The person of the support team replies: offered, privately.
        await _post(
            session,
            event_callback(channel_message(fake_slack, "no idea", user=STRANGER, thread_ts=question["ts"])),
        )
        reply = channel_message(fake_slack, REPLY, user=SUPPORT, thread_ts=question["ts"])
        await _post(session, event_callback(reply))
        [offer] = await fake_slack.wait_for(lambda: _offers(fake_slack, SUPPORT))
        assert offer["thread_ts"] == question["ts"] and QUESTION in str(offer["blocks"])
        assert not _offers(fake_slack, STRANGER)
        assert len(fake_slack.answers(CHANNEL)) == 1  # the bot answers neither reply

        offer_message = {"ts": fake_slack.next_ts(), "blocks": offer["blocks"]}
        # A click by someone untrusted (a forged payload: they never saw the offer) saves nothing.
        await _post(session, block_action(offer_message, SAVE_ACTION, user=STRANGER), form=True)
        await fake_slack.wait_for(lambda: any(e["text"] == NOT_TRUSTED for e in fake_slack.ephemeral))
        learnt = LearntAnswers.in_data_dir(helpdesk_bot.chain.retriever.knowledge_base.data_dir)
        assert await learnt.entries() == []

        await _post(session, block_action(offer_message, SAVE_ACTION, user=SUPPORT), form=True)
        saved = await fake_slack.wait_for(
            lambda: [
                e for e in fake_slack.ephemeral if e["user"] == SUPPORT and "Saved as answer" in e["text"]
            ]
        )
        [entry] = await learnt.entries()
        assert entry.question == QUESTION and entry.answered_by == "Dana <@U0X>"
        assert entry.answer == (
            "Yes: bitcoin payments go through Coinbase Commerce @channel at checkout.\n\nPick *Crypto*."
        )
        assert f"`{entry.id}`" in saved[0]["text"] and "<@U0X>" not in saved[0]["text"]

        # Asked again, the question is answered from the saved reply, which is cited with who answered.
        await _post(session, event_callback(mention(fake_slack, QUESTION)))
        again = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL)[1:]))[0]
    finally:
        await session.close()
        await server.stop()
    text = json.dumps(again["blocks"])
    assert "Coinbase Commerce" in again["text"]
    assert f"|Answered by Dana &lt;@U0X&gt;, {entry.saved_at[:10]}>" in text  # escaped, links the reply
    assert f"archives/{CHANNEL}/p{reply['ts']}" in text
    assert "<!channel>" not in text and "<@U0X>" not in text
