"""`helpdesk serve`: what it needs, connector start-up errors, scheduled syncs, and the real process end to end."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time

import aiohttp
import pytest
from conftest import REPO, answer_settings, write
from fake_discord import FakeDiscord
from fake_slack import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    event_callback,
    free_port,
    mention,
    signed_request,
    slack_settings,
)

from bot.runtime import build_bot, open_sources
from bot.settings import Settings
from connectors.server import ConnectorFailed, HelpdeskServer, NoPlatformConfigured, serve
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker


@pytest.fixture
async def fake_slack():
    async with FakeSlack() as fake:
        yield fake


async def test_without_platform_credentials_serve_says_what_to_set(tmp_path):
    with pytest.raises(NoPlatformConfigured) as raised:
        await serve(Settings(data_dir=tmp_path / "data"))
    message = str(raised.value)
    assert "SLACK_BOT_TOKEN" in message and "SLACK_SIGNING_SECRET" in message and "SLACK_APP_TOKEN" in message
    assert "helpdesk chat" in message
    assert not (tmp_path / "data").exists()  # nothing was loaded or created


async def test_http_mode_needs_the_signing_secret(tmp_path, fake_slack, helpdesk_bot):
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        HelpdeskServer(slack_settings(tmp_path, fake_slack, slack_signing_secret=None), helpdesk_bot)


async def test_a_rejected_token_stops_the_server_with_a_clear_error(tmp_path, fake_slack, helpdesk_bot):
    settings = slack_settings(tmp_path, fake_slack, slack_bot_token="xoxb-revoked")
    server = HelpdeskServer(settings, helpdesk_bot)
    with pytest.raises(
        ConnectorFailed, match=r"slack connector: Slack rejected SLACK_BOT_TOKEN \(invalid_auth\)"
    ):
        await server.start()
    with pytest.raises(aiohttp.ClientConnectionError):  # the port was released
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{settings.http_port}/healthz")


async def test_scheduled_sync_picks_up_new_documents(tmp_path, fake_slack, helpdesk_bot):
    kb = helpdesk_bot.chain.retriever.knowledge_base
    settings = slack_settings(
        tmp_path, fake_slack, sources=[str(tmp_path / "small-kb")], sync_cron="* * * * * *"
    )
    server = HelpdeskServer(settings, helpdesk_bot, kb)
    await server.start()
    try:
        write(
            tmp_path / "small-kb" / "billing" / "vat.md",
            "# VAT\n\nInvoices show VAT at the customer's rate.\n",
        )
        deadline = time.monotonic() + 15
        while not any(hit.chunk.doc_id == "billing/vat" for hit in await kb.search("VAT rate", mode="bm25")):
            assert time.monotonic() < deadline, "the scheduled sync never ran"
            await asyncio.sleep(0.2)
    finally:
        await server.stop()
    assert server.schedule is not None and server.schedule.runs >= 1


@pytest.mark.parametrize("state", ["empty", "damaged"])
async def test_a_knowledge_base_with_nothing_to_serve_is_synced_on_start(
    tmp_path, fake_slack, fake_embeddings, helpdesk_bot, state
):
    kb = KnowledgeBase(tmp_path / "fresh", fake_embeddings, Chunker(400, 50), "fake")
    if state == "damaged":  # its only version lost its keyword index
        await kb.sync(open_sources(answer_settings(tmp_path)))
        shutil.rmtree(kb.store.root / "v000001" / "keywords")
        kb = KnowledgeBase(tmp_path / "fresh", fake_embeddings, Chunker(400, 50), "fake")
    settings = slack_settings(tmp_path, fake_slack, sources=[str(tmp_path / "small-kb")])
    server = HelpdeskServer(settings, build_bot(settings, kb), kb)
    await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:
            deadline = time.monotonic() + 15
            while (await (await session.get("/healthz")).json())["knowledge_base"] != "ready":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
    finally:
        await server.stop()


async def test_serve_keeps_answering_from_the_last_sound_version_when_the_newest_is_damaged(
    tmp_path, fake_slack, fake_embeddings, helpdesk_bot
):
    kb = helpdesk_bot.chain.retriever.knowledge_base
    write(
        tmp_path / "small-kb" / "billing" / "vat.md", "# VAT\n\nInvoices show VAT at the customer's rate.\n"
    )
    await kb.sync(open_sources(answer_settings(tmp_path)))
    vectors = kb.store.root / "v000002" / "vectors.faiss"
    damaged = bytearray(vectors.read_bytes())
    damaged[100:300] = bytes(200)
    vectors.write_bytes(bytes(damaged))

    fresh = KnowledgeBase(kb.data_dir, fake_embeddings, Chunker(400, 50), "fake")  # a new `helpdesk serve`
    settings = answer_settings(tmp_path, **slack_settings(tmp_path, fake_slack).model_dump(include=_SLACK))
    server = HelpdeskServer(settings, build_bot(settings, fresh), fresh)
    await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:
            health = await (await session.get("/healthz")).json()
            assert health["knowledge_base"] == "degraded" and health["index_version"] == "v000001"
            assert health["damaged_versions"] == ["v000002"]
            event = mention(fake_slack, "How long do refunds take?")
            body, headers = signed_request(event_callback(event))
            async with session.post("/slack/events", data=body, headers=headers) as response:
                assert response.status == 200
            answer = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL), timeout=30))[0]
    finally:
        await server.stop()
    assert "14 days" in json.dumps(answer["blocks"])


_SLACK = {"slack_bot_token", "slack_signing_secret", "slack_api_url", "http_host", "http_port"}


def _serve_command() -> list[str]:
    return [sys.executable, "-m", "connectors", "serve"]


async def _run(args: list[str], env: dict, timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, output.decode()


async def _discord_answer(fake: FakeDiscord, question: str, timeout: float = 60) -> list[dict]:
    interaction = await fake.slash_command("ask", question=question)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = fake.interaction_messages(interaction)
        if messages and messages[-1]["components"]:
            return messages
        await asyncio.sleep(0.1)
    raise AssertionError(f"no Discord answer; calls: {[(c.method, c.path) for c in fake.calls]}")


@pytest.mark.slow
async def test_helpdesk_serve_answers_slack_and_discord_and_shuts_down_cleanly(tmp_path, fake_slack):
    fake_discord = FakeDiscord(token="serve-discord-token-do-not-log")
    await fake_discord.start()
    port = free_port()
    env = {
        **fake_discord.env(),
        **os.environ,
        "HELPDESK_DATA_DIR": str(tmp_path / "data"),
        # The rewrite and the local model have their own tests; keep this one about the platforms.
        "HELPDESK_TONE_ENABLED": "false",
        "HELPDESK_GENERATOR": "extractive",
        "HELPDESK_HTTP_HOST": "127.0.0.1",
        "HELPDESK_HTTP_PORT": str(port),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
    }
    code, output = await _run([sys.executable, "-m", "connectors", "sync"], env, timeout=300)
    assert code == 0, output

    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *_serve_command(), cwd=REPO, env=env, stdout=log_file, stderr=asyncio.subprocess.STDOUT
        )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            deadline = time.monotonic() + 120
            while True:
                assert process.returncode is None, log_path.read_text()
                assert time.monotonic() < deadline, "serve did not come up"
                try:
                    async with session.get("/healthz") as response:
                        if response.status == 200:
                            assert (await response.json())["knowledge_base"] == "ready"
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.5)

            event = mention(fake_slack, "Which phones and tablets does Acme Invoice Mobile support?")
            body, headers = signed_request(event_callback(event))
            async with session.post("/slack/events", data=body, headers=headers) as response:
                assert response.status == 200
            answer = (await fake_slack.wait_for(lambda: fake_slack.answers(CHANNEL), timeout=60))[0]
            await fake_discord.wait_connected(timeout=60)
            discord_messages = await _discord_answer(
                fake_discord, "Which devices does the mobile app support?"
            )
        assert answer["thread_ts"] == event["ts"]
        sources = answer["blocks"][-2]["text"]["text"]
        assert "<https://help.acme-invoice.example/faq/mobile-supported-devices|" in sources, sources
        discord_text = "\n".join(m["content"] for m in discord_messages)
        assert (
            "[Which phones and tablets does Acme Invoice Mobile support?](<https://help.acme-invoice.example/faq/mobile-supported-devices>)"
            in discord_text
        ), discord_text
        assert all(
            m["allowed_mentions"] == {"parse": []} for m in discord_messages if "allowed_mentions" in m
        )

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, log_path.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await fake_discord.stop()
    output = log_path.read_text()
    assert "Shutting down" in output and "Traceback" not in output
    assert "token` will be unused" not in output
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output and fake_discord.token not in output
