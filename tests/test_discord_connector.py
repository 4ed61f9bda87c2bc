"""The Discord connector end to end: real discord.py against the fake Discord REST API and gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time

import discord
import pytest
from conftest import write
from fake_discord import EPHEMERAL, EXPIRED_TOKEN, FakeDiscord
from test_pending_events import MODEL_WORD_S, NEVER_FINISHED, TEST_LEASE_S, TEST_SWEEP_S
from test_slack_http import bot_writing

from bot.runtime import build_bot, open_sources
from bot.settings import Settings
from connectors.discord_bot import APOLOGY, VOTE_NOT_RECORDED, DiscordConnector
from connectors.discord_render import MESSAGE_LIMIT
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker

WEBHOOK = r"/webhooks/\d+/"
CALLBACK = r"/interactions/\d+/[^/]+/callback"
NO_MENTIONS = {"parse": []}

# The exact command Discord receives: changing it changes what every server sees, so it is pinned.
ASK_COMMAND = {
    "name": "ask",
    "description": "Ask the helpdesk; the answer cites its sources.",
    "type": 1,
    "options": [
        {
            "type": 3,
            "name": "question",
            "description": "What do you want to know?",
            "required": True,
            "min_length": 1,
            "max_length": 1000,
        },
        {
            "type": 5,
            "name": "private",
            "description": "Only you see the answer (you can post it to the channel afterwards).",
            "required": False,
        },
    ],
    "nsfw": False,
    "dm_permission": False,
    "default_member_permissions": None,
    "contexts": [0],
    "integration_types": None,
}


@pytest.fixture
async def fake_discord(monkeypatch):
    # The connector points discord.py's class-level endpoints at the fake; put them back afterwards.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    fake = FakeDiscord(token="test-discord-token-do-not-log")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def connect(fake_discord, tmp_path):
    """Start a DiscordConnector for a bot against the fake; stopped at the end of the test."""
    started = []

    async def connect(bot, **settings) -> DiscordConnector:
        connector = DiscordConnector(
            bot,
            Settings(
                data_dir=tmp_path / "unused",
                discord_bot_token=fake_discord.token,
                discord_api_url=fake_discord.api_url,
                discord_gateway_url=fake_discord.gateway_url,
                **settings,
            ),
        )
        await connector.start()
        started.append(connector)
        return connector

    yield connect
    for connector in started:
        await connector.stop()


async def ask(fake: FakeDiscord, question: str, **options) -> tuple[dict, list[dict]]:
    """Run /ask and return the interaction and the messages it ended with, once the buttons arrived."""
    interaction = await fake.slash_command("ask", question=question, **options)
    for _ in range(500):
        messages = fake.interaction_messages(interaction)
        if (messages and messages[-1]["components"]) or any(m["content"] == APOLOGY for m in messages):
            return interaction, messages
        await asyncio.sleep(0.02)
    raise AssertionError(f"no answer; calls: {[(c.method, c.path) for c in fake.calls]}")


def message_body(call) -> dict:
    """The message a call sends: an interaction callback's data, or the request body."""
    body = call.body if isinstance(call.body, dict) else {}
    return (body.get("data") or {}) if "/interactions/" in call.path else body


def buttons(message: dict) -> dict[str, str]:
    """custom_id → label or emoji of the buttons on a message."""
    found = {}
    for row in message["components"]:
        for button in row["components"]:
            found[button["custom_id"]] = button.get("label") or button["emoji"]["name"]
    return found


async def test_ask_defers_at_once_then_follows_up_with_the_cited_answer(
    fake_discord, connect, helpdesk_bot, caplog
):
    caplog.set_level(logging.DEBUG)
    await connect(helpdesk_bot)
    _, messages = await ask(fake_discord, "How do I start a refund?")

    callback, followup = fake_discord.calls_to("POST", CALLBACK), fake_discord.calls_to("POST", WEBHOOK)
    assert [c.body for c in callback] == [{"type": 5}]  # deferred: "helpdesk is thinking…"
    assert fake_discord.calls.index(callback[0]) < fake_discord.calls.index(followup[0])
    assert len(followup) == 1 and followup[0].body["allowed_mentions"] == NO_MENTIONS
    answer = (await helpdesk_bot.journal.answers())[-1]
    assert answer["asker"] == fake_discord.user["id"]
    [message] = messages
    assert message["content"] == (
        f"{answer['answer']}\n\n**Sources**\n[1] Refunds — `billing/refunds.md` · updated today"
    )
    assert not message["flags"] & EPHEMERAL
    assert set(buttons(message).values()) == {"👍", "👎"}
    # The bot token never reaches the logs, even at DEBUG.
    assert fake_discord.token not in caplog.text


async def test_command_is_registered_globally_with_a_pinned_payload(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot)
    [sync] = fake_discord.calls_to("PUT", r"/applications/\d+/")
    assert sync.path == f"/applications/{fake_discord.app_id}/commands"
    assert sync.body == [ASK_COMMAND]


async def test_guild_ids_register_per_guild_and_restrict_the_bot(fake_discord, connect, helpdesk_bot):
    other_guild = 200_000_000_000_000_999
    await connect(helpdesk_bot, discord_guild_ids=[fake_discord.guild_id, 200_000_000_000_000_002])
    syncs = fake_discord.calls_to("PUT", r"/applications/\d+/")
    assert [c.path for c in syncs] == [
        f"/applications/{fake_discord.app_id}/guilds/{fake_discord.guild_id}/commands",
        f"/applications/{fake_discord.app_id}/guilds/200000000000000002/commands",
    ]
    assert all(c.body == [ASK_COMMAND] for c in syncs)

    await ask(fake_discord, "How do I start a refund?")  # an allowed guild is answered
    # Elsewhere (an old global /ask still showing) the user is told, and nothing is answered.
    interaction = await fake_discord.slash_command("ask", question="refunds?", guild_id=other_guild)
    [*_, refusal] = await fake_discord.wait_for_calls("POST", CALLBACK, count=2)
    assert refusal.path.startswith(f"/interactions/{interaction['id']}/")
    assert refusal.body["type"] == 4 and refusal.body["data"]["flags"] == EPHEMERAL
    assert "not enabled" in refusal.body["data"]["content"]
    assert len(await helpdesk_bot.journal.answers()) == 1


async def test_private_answer_is_ephemeral_and_can_be_posted_publicly(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot)
    _, [private] = await ask(fake_discord, "How do I reset my password?", private=True)
    assert fake_discord.calls_to("POST", CALLBACK)[0].body == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert private["flags"] & EPHEMERAL
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    assert buttons(private)[f"helpdesk:publish:{answer_id}"] == "Post publicly"

    posting = await fake_discord.click(private["id"], f"helpdesk:publish:{answer_id}")
    await fake_discord.wait_for_calls("POST", WEBHOOK, count=2)
    [public] = fake_discord.interaction_messages(posting)
    assert public["content"] == private["content"]
    assert not public["flags"] & EPHEMERAL
    assert set(buttons(public)) == {f"helpdesk:vote:up:{answer_id}", f"helpdesk:vote:down:{answer_id}"}

    # A second click does not post the answer twice.
    again = await fake_discord.click(private["id"], f"helpdesk:publish:{answer_id}")
    [*_, reply] = await fake_discord.wait_for_calls("POST", f"/interactions/{again['id']}/")
    assert reply.body["type"] == 4 and reply.body["data"]["flags"] == EPHEMERAL
    assert "already posted" in reply.body["data"]["content"]
    assert len(fake_discord.calls_to("POST", WEBHOOK)) == 2


async def test_feedback_buttons_are_recorded_and_acknowledged(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot)
    _, [message] = await ask(fake_discord, "How do I start a refund?")
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    voter = {"id": "400000000000000077", "username": "voter", "discriminator": "0", "avatar": None}

    click = await fake_discord.click(message["id"], f"helpdesk:vote:down:{answer_id}", user=voter)
    [ack] = await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    assert ack.body["type"] == 4 and ack.body["data"]["flags"] == EPHEMERAL
    assert (await helpdesk_bot.journal.feedback_for(answer_id)) == [(-1, None, voter["id"])]


ESCALATION_CHANNEL = 300_000_000_000_000_099
RESPONDERS_ROLE = 600_000_000_000_000_001


async def test_ask_a_human_posts_in_the_escalation_channel_pinging_only_the_role(
    fake_discord, connect, helpdesk_bot
):
    await connect(
        helpdesk_bot,
        discord_escalation_channel=ESCALATION_CHANNEL,
        discord_escalation_role=RESPONDERS_ROLE,
    )
    _, [message] = await ask(fake_discord, "How do I start a refund? @everyone")
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    assert buttons(message)[f"helpdesk:escalate:{answer_id}"] == "Ask a human"

    click = await fake_discord.click(message["id"], f"helpdesk:escalate:{answer_id}")
    [reply] = await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    assert (
        reply.body["data"]["flags"] == EPHEMERAL
        and "A person from the support team was asked" in (reply.body["data"]["content"])
    )
    [post] = fake_discord.calls_to("POST", f"/channels/{ESCALATION_CHANNEL}/messages")
    content = post.body["content"]
    assert content.startswith(f"<@&{RESPONDERS_ROLE}> <@{fake_discord.user['id']}> asked for a person")
    assert "How do I start a refund?" in content and "to start a refund [1]" in content
    assert f"/channels/{fake_discord.guild_id}/{fake_discord.channel_id}/{message['id']}" in content
    assert post.body["allowed_mentions"] == {"parse": [], "roles": [RESPONDERS_ROLE]}
    assert "@everyone" not in content  # broken by a zero-width space, and not allowed to ping anyway
    [escalation] = (await helpdesk_bot.journal.activity_since(0))["escalations"]
    assert escalation["answer_id"] == answer_id and escalation["platform"] == "discord"


async def test_without_an_escalation_channel_discord_answers_have_no_ask_a_human(
    fake_discord, connect, helpdesk_bot
):
    await connect(helpdesk_bot)
    _, [message] = await ask(fake_discord, "How do I start a refund?")
    assert not any(custom_id.startswith("helpdesk:escalate:") for custom_id in buttons(message))


async def test_document_text_never_pings_anyone(fake_discord, connect, helpdesk_bot):
    # The outage article contains "@everyone" and "<@U123>": every message goes out with nothing allowed.
    await connect(helpdesk_bot)
    _, messages = await ask(fake_discord, "outage notices status page updates")
    assert "everyone" in messages[0]["content"]
    click = await fake_discord.click(messages[-1]["id"], next(iter(buttons(messages[-1]))))
    await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    sent = [body for body in map(message_body, fake_discord.calls) if "content" in body]
    assert len(sent) == 2  # the answer and the acknowledgement of the vote
    assert all(body["allowed_mentions"] == NO_MENTIONS for body in sent)


async def test_backend_failure_ends_in_a_private_apology(fake_discord, connect, tmp_path, fake_embeddings):
    settings = Settings(data_dir=tmp_path / "never-synced", retrieval_mode="bm25", generator="extractive")
    unsynced = build_bot(settings, KnowledgeBase(settings.data_dir, fake_embeddings, Chunker(400, 50), "x"))
    await connect(unsynced)
    _, messages = await ask(fake_discord, "How do I start a refund?")
    # The public "thinking…" is removed, then the apology goes to the asker alone.
    assert [c.method for c in fake_discord.calls if "/webhooks/" in c.path] == ["DELETE", "POST"]
    assert [(m["content"], m["flags"]) for m in messages] == [(APOLOGY, EPHEMERAL)]


async def test_rate_limited_followup_is_retried(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot)
    fake_discord.rate_limit_next("POST", WEBHOOK, retry_after=0.2)
    _, [message] = await ask(fake_discord, "How do I start a refund?")
    assert [c.status for c in fake_discord.calls_to("POST", WEBHOOK)] == [429, 200]
    assert "**Sources**" in message["content"]


async def test_expired_interaction_is_logged(fake_discord, connect, helpdesk_bot, caplog):
    await connect(helpdesk_bot)
    fake_discord.fail_next("POST", CALLBACK, 404, {"message": "Unknown interaction", "code": 10062})
    interaction = await fake_discord.slash_command("ask", question="How do I start a refund?")
    await fake_discord.wait_for_calls("POST", CALLBACK)
    for _ in range(200):
        if "expired" in caplog.text:
            break
        await asyncio.sleep(0.02)
    assert f"Discord interaction {interaction['id']} expired" in caplog.text
    assert not fake_discord.calls_to("POST", WEBHOOK)


async def _long_answering_bot(tmp_path, fake_embeddings, rounds: int = 5):
    """A bot whose answer to MIGRATION is a list of 6 × `rounds` steps, with room for all of them."""
    steps = "\n".join(
        f"- Step {n}: copy the {topic} settings from the old workspace, then check them in the new one."
        for n, topic in enumerate(["billing", "member", "channel", "security", "export", "audit"] * rounds, 1)
    )
    write(
        tmp_path / "kb" / "migration.md", f"# Migrating a workspace\n\nTo migrate a workspace:\n\n{steps}\n"
    )
    settings = Settings(
        data_dir=tmp_path / "long",
        sources=[str(tmp_path / "kb")],
        retrieval_mode="bm25",
        generator="extractive",
    )
    settings = settings.model_copy(update={"min_confidence": 0.0, "min_support": -1.0})
    kb = KnowledgeBase(settings.data_dir, fake_embeddings, Chunker(8000, 0), "fake")
    await kb.sync(open_sources(settings))
    return build_bot(settings, kb)


MIGRATION = "How do I migrate a workspace?"


async def test_long_answer_is_sent_in_several_messages_that_join_back(
    fake_discord, connect, tmp_path, fake_embeddings
):
    bot = await _long_answering_bot(tmp_path, fake_embeddings)
    await connect(bot)

    _, messages = await ask(fake_discord, MIGRATION)
    answer = (await bot.journal.answers())[-1]["answer"]
    assert len(answer) > MESSAGE_LIMIT and len(messages) >= 2
    assert all(len(m["content"]) <= MESSAGE_LIMIT for m in messages)
    joined = "".join(m["content"] for m in messages)
    assert joined.split("\n\n**Sources**\n")[0] == answer
    assert [bool(m["components"]) for m in messages] == [False] * (len(messages) - 1) + [True]


async def test_replies_in_the_answer_thread_continue_the_conversation(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot, discord_answer_threads=True)
    _, [message] = await ask(fake_discord, "How do I reset my password?")
    [opened] = await fake_discord.wait_for_calls("POST", r"/channels/\d+/messages/\d+/threads")
    assert opened.path == f"/channels/{fake_discord.channel_id}/messages/{message['id']}/threads"
    assert opened.body["name"] == "How do I reset my password?"
    thread_id = message["id"]

    question = await fake_discord.user_message(thread_id, f"<@{fake_discord.app_id}> how long is it valid?")
    [reply] = await fake_discord.wait_for_calls("POST", f"/channels/{thread_id}/messages")
    follow_up = (await helpdesk_bot.journal.answers())[-1]
    assert follow_up["question"] == "how long is it valid?"
    assert follow_up["standalone_query"].startswith("How do I reset my password?")
    assert "Resetting your password" in reply.body["content"]
    assert str(reply.body["message_reference"]["message_id"]) == question["id"]
    assert reply.body["allowed_mentions"] == NO_MENTIONS

    # Messages that do not mention the bot are left to the humans.
    await fake_discord.user_message(thread_id, "thanks!", mentions_bot=False)
    await asyncio.sleep(0.2)
    assert len(fake_discord.calls_to("POST", f"/channels/{thread_id}/messages")) == 1


async def test_answer_threads_still_answer_after_a_restart(fake_discord, connect, helpdesk_bot):
    first = await connect(helpdesk_bot, discord_answer_threads=True)
    _, [message] = await ask(fake_discord, "How do I reset my password?")
    await fake_discord.wait_for_calls("POST", r"/channels/\d+/messages/\d+/threads")
    await first.stop()

    # The conversation so far lived in memory; the thread is the bot's own, so it is still answered.
    await connect(helpdesk_bot, discord_answer_threads=True)
    await fake_discord.user_message(message["id"], f"<@{fake_discord.app_id}> refunds for annual plans?")
    [reply] = await fake_discord.wait_for_calls("POST", f"/channels/{message['id']}/messages")
    assert "Refunds" in reply.body["content"]


async def test_a_rejected_token_fails_start_with_a_clear_error(fake_discord, tmp_path, helpdesk_bot, caplog):
    settings = Settings(
        data_dir=tmp_path / "unused",
        discord_bot_token="not-the-token",
        discord_api_url=fake_discord.api_url,
        discord_gateway_url=fake_discord.gateway_url,
    )
    connector = DiscordConnector(helpdesk_bot, settings)
    with pytest.raises(RuntimeError, match="rejected DISCORD_BOT_TOKEN") as raised:
        await connector.start()
    assert "not-the-token" not in str(raised.value) and "not-the-token" not in caplog.text
    await connector.stop()


def test_configured_only_with_a_token():
    assert not DiscordConnector.configured(Settings())
    assert DiscordConnector.configured(Settings(discord_bot_token="x"))


OTHER_BOT = {
    "id": "400000000000000099",
    "username": "otherbot",
    "discriminator": "0",
    "avatar": None,
    "bot": True,
}


async def _logged(caplog, text: str) -> None:
    for _ in range(250):
        if text in caplog.text:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never logged {text!r}:\n{caplog.text}")


async def test_malformed_interactions_are_dropped_and_the_bot_keeps_answering(
    fake_discord, connect, helpdesk_bot, caplog
):
    await connect(helpdesk_bot)
    base = {"type": 2, "application_id": str(fake_discord.app_id), "guild_id": str(fake_discord.guild_id)}
    malformed = [
        {"id": "1", "type": 2},  # no token, no user, no data
        {**base, "id": "2", "token": "t2", "member": {"user": {"id": "not-a-number"}}, "data": {}},
        {**base, "id": "3", "token": "t3", "member": {}, "data": None},
        {"id": "4", "type": 3, "token": "t4", "application_id": str(fake_discord.app_id), "data": {}},
        "not even an object",
    ]
    for payload in malformed:
        await fake_discord.dispatch("INTERACTION_CREATE", payload)
    await fake_discord.dispatch("MESSAGE_CREATE", {"id": "5", "content": "no author, no channel"})
    await _logged(caplog, "dropped a malformed MESSAGE_CREATE event 5")
    assert caplog.text.count("dropped a malformed INTERACTION_CREATE") == len(malformed)

    _, [message] = await ask(fake_discord, "How do I start a refund?")
    assert "**Sources**" in message["content"]


@pytest.mark.parametrize("status", sorted(EXPIRED_TOKEN))
async def test_an_expired_token_is_logged_and_the_next_question_answered(
    fake_discord, connect, helpdesk_bot, caplog, status
):
    await connect(helpdesk_bot)
    fake_discord.expire_next_token_after_defer(status)
    interaction = await fake_discord.slash_command("ask", question="How do I start a refund?")
    [followup] = await fake_discord.wait_for_calls("POST", WEBHOOK)
    assert followup.status == status
    await _logged(caplog, f"Discord interaction {interaction['id']} expired before its answer")
    [record] = [r for r in caplog.records if "expired before its answer" in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert "the asker got no answer" in record.getMessage()

    _, [message] = await ask(fake_discord, "How do I reset my password?")
    assert "Resetting your password" in message["content"]


async def test_interactions_and_messages_of_other_bots_are_ignored(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot, discord_answer_threads=True)
    _, [message] = await ask(fake_discord, "How do I reset my password?")
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    thread_id = message["id"]
    await fake_discord.wait_for_calls("POST", r"/channels/\d+/messages/\d+/threads")
    calls_before = len(fake_discord.calls)

    command = await fake_discord.slash_command("ask", question="refunds?", user=OTHER_BOT)
    click = await fake_discord.click(message["id"], f"helpdesk:vote:up:{answer_id}", user=OTHER_BOT)
    await fake_discord.user_message(thread_id, f"<@{fake_discord.app_id}> and refunds?", author=OTHER_BOT)
    await asyncio.sleep(0.5)

    assert fake_discord.calls[calls_before:] == []  # not even an acknowledgement
    assert len(await helpdesk_bot.journal.answers()) == 1 and not (
        await helpdesk_bot.journal.feedback_for(answer_id)
    )
    assert command["member"]["user"]["bot"] and click["member"]["user"]["bot"]


async def test_voting_twice_keeps_one_vote_the_latest(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot)
    _, [message] = await ask(fake_discord, "How do I start a refund?")
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    for vote in ("up", "up", "down"):
        click = await fake_discord.click(message["id"], f"helpdesk:vote:{vote}:{answer_id}")
        await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    assert (await helpdesk_bot.journal.feedback_for(answer_id)) == [(-1, None, fake_discord.user["id"])]


async def test_a_vote_that_cannot_be_stored_is_reported_to_the_voter(fake_discord, connect, helpdesk_bot):
    await connect(helpdesk_bot)
    _, [message] = await ask(fake_discord, "How do I start a refund?")
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    helpdesk_bot.journal.path.unlink()
    helpdesk_bot.journal.path.mkdir()  # an unusable journal, whoever runs the bot
    click = await fake_discord.click(message["id"], f"helpdesk:vote:up:{answer_id}")
    [ack] = await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    assert ack.body["data"]["content"] == VOTE_NOT_RECORDED and ack.body["data"]["flags"] == EPHEMERAL


SUPPORT_ROLE = "600000000000000002"
SUPPORT = {
    "id": "400000000000000007",
    "username": "dana",
    "global_name": "Dana @everyone",
    "discriminator": "0",
    "avatar": None,
}
STRANGER = {"id": "400000000000000008", "username": "stranger", "discriminator": "0", "avatar": None}


async def test_a_trusted_reply_is_saved_then_answers_the_question_citing_its_author(
    fake_discord, connect, helpdesk_bot
):
    fake_discord.guild_roles.append(SUPPORT_ROLE)
    fake_discord.member_roles[SUPPORT["id"]] = [SUPPORT_ROLE]
    await connect(
        helpdesk_bot,
        discord_answer_threads=True,
        discord_escalation_channel=ESCALATION_CHANNEL,
        discord_trusted_role=int(SUPPORT_ROLE),
    )
    _, [message] = await ask(fake_discord, "Can I pay in bitcoin?")
    thread_id = message["id"]
    await fake_discord.wait_for_calls("POST", r"/channels/\d+/messages/\d+/threads")
    answer_id = (await helpdesk_bot.journal.answers())[-1]["id"]
    click = await fake_discord.click(message["id"], f"helpdesk:escalate:{answer_id}")
    await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")

    # The asker's own message and a stranger's reply are no answers to save; the support person's is.
    await fake_discord.user_message(thread_id, "anyone?", mentions_bot=False)
    await fake_discord.user_message(thread_id, "no idea", mentions_bot=False, author=STRANGER)
    reply = await fake_discord.user_message(
        thread_id,
        "Yes, bitcoin works through Coinbase Commerce at checkout.",
        mentions_bot=False,
        author=SUPPORT,
    )
    [offer_call] = await fake_discord.wait_for_calls("POST", f"/channels/{thread_id}/messages")
    offer = offer_call.body
    assert (
        offer["content"].startswith(f"<@{SUPPORT['id']}>, you replied")
        and "Can I pay in bitcoin?" in offer["content"]
    )
    assert offer["allowed_mentions"] == {"parse": [], "replied_user": False}  # pings no one
    save = f"helpdesk:learn:{reply['id']}"
    [offer_message] = [m for m in fake_discord.messages.values() if save in str(m["components"])]

    # Someone else (untrusted) clicking saves nothing.
    click = await fake_discord.click(offer_message["id"], save, user=STRANGER)
    [refused] = await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    assert "Only members with the role" in refused.body["data"]["content"]
    assert refused.body["data"]["flags"] == EPHEMERAL

    click = await fake_discord.click(offer_message["id"], save, user=SUPPORT)
    [deferred] = await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    assert deferred.body["type"] == 5 and deferred.body["data"]["flags"] == EPHEMERAL
    [confirmation] = await fake_discord.wait_for_calls("POST", WEBHOOK + f"interaction-token-{click['id']}")
    assert confirmation.body["content"].startswith("Saved as answer `")
    assert "@everyone" not in confirmation.body["content"]

    _, [again] = await ask(fake_discord, "Can I pay in bitcoin?")
    assert "Coinbase Commerce" in again["content"]
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert f"[Answered by Dana @\u200beveryone, {day}](<" in again["content"]
    assert f"/{thread_id}/{reply['id']}>)" in again["content"]
    assert len(fake_discord.calls_to("POST", f"/channels/{thread_id}/messages")) == 1  # one offer, to Dana


async def test_replicas_on_one_database_answer_each_question_and_follow_up_once(
    fake_discord, connect, helpdesk_bot, database_url
):
    pytest.importorskip("psycopg")
    for _ in range(2):  # each replica connects to the gateway, and so receives every event
        await connect(helpdesk_bot, database_url=database_url, discord_answer_threads=True)
    _, [message] = await ask(fake_discord, "How do I reset my password?")
    await fake_discord.wait_for_calls("POST", r"/channels/\d+/messages/\d+/threads")
    thread_id = message["id"]
    await fake_discord.user_message(thread_id, f"<@{fake_discord.app_id}> how long is it valid?")
    await fake_discord.wait_for_calls("POST", f"/channels/{thread_id}/messages")
    [vote] = [c["custom_id"] for c in message["components"][0]["components"] if "vote:up" in c["custom_id"]]
    await fake_discord.click(message["id"], vote)
    await fake_discord.wait_for_calls("POST", CALLBACK, count=2)
    await asyncio.sleep(0.5)  # time for a second replica to answer, were it to

    assert len(fake_discord.calls_to("POST", CALLBACK)) == 2  # one /ask and one click, each handled once
    assert len(fake_discord.calls_to("POST", f"/channels/{thread_id}/messages")) == 1
    answers = await helpdesk_bot.journal.answers()
    assert [a["question"] for a in answers] == ["How do I reset my password?", "how long is it valid?"]
    assert len(await helpdesk_bot.journal.feedback_for(answers[0]["id"])) == 1


async def test_offers_made_by_one_replica_are_taken_up_by_another(
    fake_discord, connect, helpdesk_bot, database_url
):
    psycopg = pytest.importorskip("psycopg")
    fake_discord.guild_roles.append(SUPPORT_ROLE)
    fake_discord.member_roles[SUPPORT["id"]] = [SUPPORT_ROLE]
    options = {
        "database_url": database_url,
        "discord_answer_threads": True,
        "discord_escalation_channel": ESCALATION_CHANNEL,
        "discord_trusted_role": int(SUPPORT_ROLE),
    }
    # One replica offers to post a private answer publicly, and a support person's reply to be saved…
    first = await connect(helpdesk_bot, **options)
    _, [private] = await ask(fake_discord, "How do I reset my password?", private=True)
    _, [too_old] = await ask(fake_discord, "How do I start a refund?", private=True)
    _, [message] = await ask(fake_discord, "Can I pay in bitcoin?")
    thread_id = message["id"]
    await fake_discord.wait_for_calls("POST", r"/channels/\d+/messages/\d+/threads")
    [reset, refund, bitcoin] = [a["id"] for a in await helpdesk_bot.journal.answers()]
    click = await fake_discord.click(message["id"], f"helpdesk:escalate:{bitcoin}")
    await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
    reply = await fake_discord.user_message(
        thread_id, "Yes, through Coinbase Commerce.", mentions_bot=False, author=SUPPORT
    )
    await fake_discord.wait_for_calls("POST", f"/channels/{thread_id}/messages")
    save = f"helpdesk:learn:{reply['id']}"
    [offer] = [m for m in fake_discord.messages.values() if save in str(m["components"])]
    await first.stop()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await connection.execute(
            "UPDATE discord_offers SET expires_at = now() - interval '1 second' WHERE key = %s",
            (f"publish:{refund}",),
        )

    # …and another replica, which gets the clicks, takes them up.
    await connect(helpdesk_bot, **options)
    posting = await fake_discord.click(private["id"], f"helpdesk:publish:{reset}")
    await fake_discord.wait_for_calls("POST", WEBHOOK + posting["token"])
    [public] = fake_discord.interaction_messages(posting)
    assert public["content"] == private["content"] and not public["flags"] & EPHEMERAL
    click = await fake_discord.click(offer["id"], save, user=SUPPORT)
    [confirmation] = await fake_discord.wait_for_calls("POST", WEBHOOK + click["token"])
    assert confirmation.body["content"].startswith("Saved as answer `")

    # An offer past its time is turned down, as is one already taken up.
    for message_id, custom_id, expected in [
        (too_old["id"], f"helpdesk:publish:{refund}", "already posted or is too old"),
        (private["id"], f"helpdesk:publish:{reset}", "already posted or is too old"),
        (offer["id"], save, "This offer has expired"),
    ]:
        click = await fake_discord.click(message_id, custom_id, user=SUPPORT)
        [*_, turned_down] = await fake_discord.wait_for_calls("POST", f"/interactions/{click['id']}/")
        assert expected in turned_down.body["data"]["content"]


@pytest.fixture
def quick_takeover(monkeypatch):
    """Leases of a second, swept every tenth of one; a replica stopped gives its answers no time to end."""
    monkeypatch.setattr("connectors.discord_bot.ANSWER_LEASE_S", TEST_LEASE_S)
    monkeypatch.setattr("connectors.discord_bot.SWEEP_INTERVAL_S", TEST_SWEEP_S)
    monkeypatch.setattr("connectors.discord_bot.STOP_GRACE_S", 0.1)


async def _deferred_and_left(fake: FakeDiscord, connector: DiscordConnector, question: str) -> dict:
    """Run /ask on a replica answering from a model that never finishes, and stop the replica once it
    deferred (its answer is cancelled, nothing marked answered): the interaction it left "thinking…"."""
    interaction = await fake.slash_command("ask", question=question)
    await fake.wait_for_calls("POST", CALLBACK)
    await asyncio.sleep(0.2)  # the question is recorded as pending right after the deferral
    await connector.stop()
    [thinking] = fake.interaction_messages(interaction)
    assert thinking["flags"] & 128  # still "thinking…"
    return interaction


async def test_an_ask_a_replica_deferred_and_never_answered_is_answered_in_its_reply_by_another(
    fake_discord, connect, helpdesk_bot, tmp_path, database_url, quick_takeover, caplog
):
    psycopg = pytest.importorskip("psycopg")
    async with bot_writing(tmp_path, helpdesk_bot, NEVER_FINISHED, delay_s=MODEL_WORD_S) as never_finishing:
        dying = await connect(never_finishing, database_url=database_url)
        interaction = await _deferred_and_left(fake_discord, dying, "How do I start a refund?")
        await connect(helpdesk_bot, database_url=database_url)
        [edit] = await fake_discord.wait_for_calls("PATCH", rf"{WEBHOOK}[^/]+/messages/@original", timeout=20)
        await asyncio.sleep(3 * TEST_LEASE_S)  # leases lapse, sweeps go on: nothing is answered again

    assert len(fake_discord.calls_to("PATCH", WEBHOOK)) == 1 and edit.status == 200
    assert not fake_discord.calls_to("POST", WEBHOOK)  # no followup: the deferred reply holds the answer
    [message] = fake_discord.interaction_messages(interaction)
    assert "Refunds are issued within 14 days" in message["content"]
    assert set(buttons(message).values()) == {"👍", "👎"} and not message["flags"] & 128
    [answer] = await helpdesk_bot.journal.answers()
    assert answer["asker"] == fake_discord.user["id"] and answer["question"] == "How do I start a refund?"
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute(
            "SELECT payload, outcome FROM pending_events WHERE platform = 'discord'"
        )
        [(payload, outcome)] = await cursor.fetchall()
    assert outcome == "answered" and "token" not in payload  # the token is kept only while it is pending
    assert interaction["token"] not in caplog.text


async def test_an_ask_deferred_too_long_ago_to_be_answered_is_given_up(
    fake_discord, connect, helpdesk_bot, tmp_path, quick_takeover, monkeypatch, caplog
):
    question = "How do I start a refund? my secret order 1234"
    async with bot_writing(tmp_path, helpdesk_bot, NEVER_FINISHED, delay_s=MODEL_WORD_S) as never_finishing:
        dying = await connect(never_finishing)  # no database: the data dir's files
        interaction = await _deferred_and_left(fake_discord, dying, question)
        monkeypatch.setattr("connectors.discord_bot.ANSWERABLE_FOR_S", 0.5)  # Discord's 15 minutes, passed
        await asyncio.sleep(0.5)
        await connect(helpdesk_bot)  # restarted
        await _logged(caplog, "gave up on interaction")
        await asyncio.sleep(3 * TEST_LEASE_S)

    assert not fake_discord.calls_to("PATCH", WEBHOOK) and not fake_discord.calls_to("POST", WEBHOOK)
    [given_up] = [r for r in caplog.records if "gave up on interaction" in r.getMessage()]
    assert given_up.levelname == "ERROR" and interaction["id"] in given_up.getMessage()
    assert interaction["token"] not in caplog.text and "secret order" not in caplog.text
    with sqlite3.connect(tmp_path / "unused" / "pending-events.sqlite3") as connection:
        [(payload, outcome)] = connection.execute("SELECT payload, outcome FROM pending_events").fetchall()
    assert outcome == "given up" and "token" not in json.loads(payload)


async def test_an_answer_a_replica_stopped_sending_midway_is_sent_on_from_there_by_another(
    fake_discord, connect, tmp_path, fake_embeddings, quick_takeover
):
    bot = await _long_answering_bot(tmp_path, fake_embeddings, rounds=12)
    dying = await connect(bot)  # no database: the data dir's files
    fake_discord.lose_next("POST", WEBHOOK, after=2)  # the third message is in flight when it is stopped
    interaction = await fake_discord.slash_command("ask", question=MIGRATION)
    await fake_discord.wait_for_calls("POST", WEBHOOK, count=3)
    await dying.stop()
    fake_discord.release()
    sent_before = [m["content"] for m in fake_discord.interaction_messages(interaction)]
    assert len(sent_before) == 2

    await connect(bot)  # restarted: takes the /ask over
    for _ in range(500):
        messages = fake_discord.interaction_messages(interaction)
        if messages and messages[-1]["components"]:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(3 * TEST_LEASE_S)  # leases lapse, sweeps go on: nothing is sent again

    messages = fake_discord.interaction_messages(interaction)
    answers = await bot.journal.answers()
    assert len(messages) >= 4 and [m["content"] for m in messages[:2]] == sent_before
    assert "".join(m["content"] for m in messages).split("\n\n**Sources**\n")[0] == answers[-1]["answer"]
    assert [bool(m["components"]) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert not fake_discord.calls_to("PATCH", WEBHOOK)  # "thinking…" was replaced by the first message
    assert len(answers) == 1  # answered once, sent on by the second replica
