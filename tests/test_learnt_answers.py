"""Answers learnt from people: which replies count, saving and indexing at once, status, forget, admin page."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
import pytest
from conftest import write
from fake_slack import FakeSlack, slack_settings
from journal_seed import seed
from typer.testing import CliRunner

from bot.journal import SqliteJournal
from bot.learning import AnswerLearning
from connectors.cli import app
from connectors.server import HelpdeskServer
from knowledge.sources import FileSource, SourceOptions
from knowledge.sources.learnt import LearntAnswers

TOKEN = "admin-token-do-not-log-0123456789"
CONVERSATION = "C0SUPPORT:1.0"  # where journal_seed records its questions


async def helpdesk(args: list[str], env: dict):
    """Run the command line as a person would: outside this test's event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=env)


@pytest.fixture
async def learning(tmp_path, make_kb):
    write(tmp_path / "kb/refunds.md", "# Refunds\n\nRefunds are issued within 14 days.\n")
    kb = make_kb()
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])
    return AnswerLearning(
        SqliteJournal(tmp_path / "data/journal.sqlite3"), kb, LearntAnswers.in_data_dir(kb.data_dir)
    )


async def test_only_a_reply_by_someone_else_to_a_refused_question_is_an_answer(learning):
    assert await learning.question_replied_to("slack", CONVERSATION, "U0DANA") is None  # nothing asked
    await seed(learning.journal, "How do I start a refund?", datetime.now(UTC))
    assert await learning.question_replied_to("slack", CONVERSATION, "U0DANA") is None  # it was answered
    refused = await seed(learning.journal, "Can I pay in bitcoin?", datetime.now(UTC), refused=True)
    row = await learning.question_replied_to("slack", CONVERSATION, "U0DANA")
    assert row["id"] == refused.id and row["question"] == "Can I pay in bitcoin?"
    assert await learning.question_replied_to("slack", CONVERSATION, "U0ASKER") is None  # a follow-up
    assert await learning.question_replied_to("discord", CONVERSATION, "U0DANA") is None


async def test_a_saved_answer_is_searchable_at_once_listed_by_status_and_forgotten(learning, tmp_path):
    refused = await seed(learning.journal, "Can I pay in bitcoin?", datetime.now(UTC), refused=True)
    row = await learning.journal.answer(refused.id)
    entry = await learning.save(row, "Yes, through Coinbase Commerce.", "Dana", "U0DANA", "slack", None)

    [hit] = await learning.knowledge_base.search("bitcoin Coinbase", k=1, mode="bm25")
    assert hit.chunk.doc_id == f"learnt/{entry.id}" and hit.chunk.title == entry.citation_title
    assert entry.citation_title == f"Answered by Dana, {datetime.now(UTC).date().isoformat()}"
    env = {"HELPDESK_DATA_DIR": str(tmp_path / "data")}
    status = await helpdesk(["status", "--json"], env)
    [listed] = json.loads(status.stdout)["learnt_answers"]["entries"]
    assert listed["id"] == entry.id and listed["question"] == "Can I pay in bitcoin?"
    assert entry.id in (await helpdesk(["status"], env)).stdout

    unknown = await helpdesk(["forget", "0123456789ab"], env)
    assert unknown.exit_code == 1 and "No learnt answer '0123456789ab'" in unknown.output

    await learning.forget(entry.id)
    assert await learning.answers.entries() == []
    hits = await learning.knowledge_base.search("refunds bitcoin Coinbase", k=5, mode="bm25")
    assert [hit.chunk.doc_id for hit in hits] == ["refunds"]  # the other sources stay


async def test_the_admin_page_lists_learnt_answers_and_removes_them(tmp_path, helpdesk_bot):
    kb = helpdesk_bot.chain.retriever.knowledge_base
    learning = AnswerLearning(helpdesk_bot.journal, kb, LearntAnswers.in_data_dir(kb.data_dir))
    refused = await seed(helpdesk_bot.journal, "Can I pay in bitcoin?", datetime.now(UTC), refused=True)
    row = await helpdesk_bot.journal.answer(refused.id)
    entry = await learning.save(row, "Yes <script>alert(1)</script>", "Dana", "U0DANA", "slack", None)
    async with FakeSlack() as fake_slack:
        settings = slack_settings(tmp_path, fake_slack, admin_token=TOKEN, data_dir=kb.data_dir)
        server = HelpdeskServer(settings, helpdesk_bot, kb)
        await server.start()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}", headers=headers) as session:
                async with session.get("/admin/sources") as response:
                    page = await response.text()
                assert entry.id in page and "Can I pay in bitcoin?" in page
                assert "<script>alert" not in page and "&lt;script&gt;" in page
                forget = f"/admin/learnt/{entry.id}/forget"
                async with session.post(forget, allow_redirects=False) as response:
                    assert response.status == 303
                async with session.post(forget, allow_redirects=False) as response:
                    assert response.status == 404
                async with session.post(
                    forget, allow_redirects=False, headers={"Authorization": "x"}
                ) as response:
                    assert response.status == 401
                for _ in range(100):
                    if not server.admin._syncs:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await server.stop()
    assert await learning.answers.entries() == []
    hits = await kb.search("Coinbase bitcoin", k=5, mode="bm25")
    assert all(not hit.chunk.doc_id.startswith("learnt/") for hit in hits)
