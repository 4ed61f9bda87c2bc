"""The journal in PostgreSQL answers every question exactly as the SQLite journal does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fake_slack import FakeSlack, slack_settings
from journal_seed import backdate, citation

from bot.journal import SqliteJournal, UnknownAnswer
from bot.models import Answer, Question
from bot.report import build_report

pytest.importorskip("psycopg")
from bot.pg_journal import PostgresJournal
from knowledge.database import Database

NOW = datetime.now(UTC).replace(microsecond=0)
MONTH = timedelta(days=30)
TOKEN = "admin-token-do-not-log-0123456789"


def _answer(text: str, *, refused: bool = False, cited: tuple[str, ...] = ()) -> Answer:
    return Answer(
        text,
        [citation(doc_id, doc_id.split("/")[-1].title(), n) for n, doc_id in enumerate(cited, 1)],
        refused=refused,
        confidence=0.2 if refused else 0.8,
        timings_ms={"total": 300.0 + len(text)},
    )


# (question, platform, conversation, hours ago, answer): every answer recorded once in each journal.
SCENARIO = [
    (
        "How do I start a refund?",
        "slack",
        "C1:1.0",
        200,
        _answer("Email billing [1].", cited=("billing/refunds",)),
    ),
    (
        "Refund for annual plans?",
        "slack",
        "C1:2.0",
        150,
        _answer("Pro rata [1].", cited=("billing/refunds",)),
    ),
    ("Can I pay in bitcoin?", "slack", "C1:3.0", 100, _answer("I could not find that.", refused=True)),
    ("Is 100% uptime promised?", "discord", "I1", 50, _answer("No [1].", cited=("status/outages",))),
    ("What is a_b testing?", "discord", "I2", 20, _answer("I could not find that either.", refused=True)),
    (
        "Reset my password",
        "slack",
        "C1:3.0",
        2,
        _answer("Use Forgot password [1].", cited=("account/password",)),
    ),
]
REFUND, ANNUAL, BITCOIN, UPTIME, AB_TESTING, PASSWORD = (answer for *_, answer in SCENARIO)


def _without(rows: list[dict], key: str) -> list[dict]:
    """Rows without a column written at the moment of the call (each journal runs at its own moment)."""
    return [{k: v for k, v in row.items() if k != key} for row in rows]


async def _play(journal) -> dict:
    """Record the scenario (answers, votes, a hand-off, a thread), then read back all the journal tells."""
    for text, platform, conversation, hours, answer in SCENARIO:
        asked = Question(text, asker="U0ASKER", channel="C1", conversation_id=conversation, platform=platform)
        await journal.record_answer(asked, answer)
        await backdate(journal, answer.id, NOW - timedelta(hours=hours))
    for voter, vote in [("U1", 1), ("U2", -1), ("U1", -1), (None, 1), (None, 1)]:
        await journal.record_feedback(
            REFUND.id, vote, "changed" if voter == "U1" and vote < 0 else None, voter
        )
    await journal.record_feedback(BITCOIN.id, -1, None, "U3")
    for unknown in (
        journal.record_feedback("no-such-answer", 1, None, "U1"),
        journal.record_escalation("no-such-answer", "U1", "slack", "C0ESCALATE"),
    ):
        with pytest.raises(UnknownAnswer):
            await unknown
    awaiting_before = await journal.awaiting_a_person("slack", "C1:1.0")
    await journal.record_escalation(REFUND.id, "U0ASKER", "slack", "C0ESCALATE")
    await journal.continue_in(UPTIME.id, "T42")
    since = (NOW - MONTH).timestamp()
    activity = await journal.activity_since(since)
    assert all(e["requested_at"] >= since for e in activity["escalations"])
    report = (await build_report(journal, None, None, MONTH, now=NOW, with_gaps=False)).to_dict()
    return {
        "answer": await journal.answer(BITCOIN.id),
        "unknown": await journal.answer("no-such-answer"),
        "awaiting": [
            awaiting_before,
            await journal.awaiting_a_person("slack", "C1:1.0"),  # handed off since
            await journal.awaiting_a_person("slack", "C1:3.0"),  # the latest is answered: the refused one
            await journal.awaiting_a_person("discord", "T42"),  # answered, not handed off
            await journal.awaiting_a_person("discord", "I2"),
            await journal.awaiting_a_person("discord", "C1:3.0"),  # another platform
        ],
        "answers_since": activity["answers"],
        "escalations": _without(activity["escalations"], "requested_at"),
        "conversations": [
            await journal.conversations(),
            await journal.conversations("REFUND", 1, 0),  # any case
            await journal.conversations("refund", 1, 1),
            await journal.conversations("100%"),  # LIKE's wildcards are searched for as typed
            await journal.conversations("a_b"),
            await journal.conversations("nothing like this"),
            await journal.conversations("", 2, 4),
        ],
        "feedback": [await journal.feedback_for(REFUND.id), await journal.feedback_for(PASSWORD.id)],
        "answers": await journal.answers(),
        "report": {**report, "escalations": _without(report["escalations"], "requested_at")},
    }


async def test_both_journals_record_and_answer_alike(tmp_path, database_url):
    database = Database(database_url)
    try:
        expected = await _play(SqliteJournal(tmp_path / "journal.sqlite3"))
        found = await _play(PostgresJournal(database))
    finally:
        await database.close()

    assert found == expected
    # …and what they both say is right.
    assert expected["answer"]["refused"] == 1 and expected["answer"]["question"] == "Can I pay in bitcoin?"
    assert expected["unknown"] is None
    assert [row and row["id"] for row in expected["awaiting"]] == [
        None,
        REFUND.id,
        BITCOIN.id,
        None,
        AB_TESTING.id,
        None,
    ]
    assert [row["id"] for row in expected["answers_since"]] == [answer.id for *_, answer in SCENARIO]
    refund = expected["answers_since"][0]
    assert (refund["up_votes"], refund["down_votes"]) == (2, 2) and refund["citations"][0]["doc_id"] == (
        "billing/refunds"
    )
    assert expected["escalations"] == [
        {
            "answer_id": REFUND.id,
            "requested_by": "U0ASKER",
            "platform": "slack",
            "posted_to": "C0ESCALATE",
            "question": "How do I start a refund?",
        }
    ]
    everything, refund_first, refund_second, uptime, ab_testing, nothing, last_page = expected[
        "conversations"
    ]
    assert [row["id"] for row in everything[0]] == [answer.id for *_, answer in reversed(SCENARIO)]
    assert (
        everything[1] == 6
        and last_page[1] == 6
        and [row["id"] for row in last_page[0]] == [ANNUAL.id, REFUND.id]
    )
    assert (refund_first[0][0]["id"], refund_second[0][0]["id"], refund_first[1]) == (ANNUAL.id, REFUND.id, 2)
    assert [row["id"] for row in uptime[0]] == [UPTIME.id] and uptime[0][0]["conversation_id"] == "T42"
    assert [row["id"] for row in ab_testing[0]] == [AB_TESTING.id] and nothing == ([], 0)
    assert sorted(expected["feedback"][0], key=str) == sorted(
        [(-1, None, "U2"), (-1, "changed", "U1"), (1, None, None), (1, None, None)], key=str
    )
    assert expected["feedback"][1] == []
    assert expected["report"]["volume"]["questions"] == 6 and expected["report"]["volume"]["escalations"] == 1


async def test_the_admin_page_lists_the_conversations_in_the_database(tmp_path, database_url, helpdesk_bot):
    from bot.runtime import build_bot, close_database
    from connectors.server import HelpdeskServer

    async with FakeSlack() as fake_slack:
        settings = slack_settings(tmp_path, fake_slack, admin_token=TOKEN, database_url=database_url)
        kb = helpdesk_bot.chain.retriever.knowledge_base
        bot = build_bot(settings, kb)  # a replica keeping its journal in the database
        journal = bot.journal
        for text, platform, conversation, hours, answer in SCENARIO:
            asked = Question(text, asker="U0ASKER", conversation_id=conversation, platform=platform)
            await journal.record_answer(asked, answer)
            await backdate(journal, answer.id, NOW - timedelta(hours=hours))
        await journal.record_feedback(REFUND.id, 1, None, "U1")
        server = HelpdeskServer(settings, bot, kb)
        await server.start()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{server.port}", headers=headers
            ) as client:
                found = await client.get("/admin/conversations", params={"q": "REFUND"})
                everything = await client.get("/admin/conversations")
                overview = await client.get("/admin")
        finally:
            await server.stop()
            await close_database(settings)
    assert found.status_code == 200 and "Refund for annual plans?" in found.text
    assert "How do I start a refund?" in found.text and "Can I pay in bitcoin?" not in found.text
    assert all(text in everything.text for text, *_ in SCENARIO)
    assert overview.status_code == 200 and not (settings.data_dir / "journal.sqlite3").exists()


@pytest.mark.slow
async def test_helpdesk_report_counts_the_answers_of_every_replica(tmp_path, database_url, monkeypatch):
    import asyncio
    import json

    from conftest import answer_settings
    from typer.testing import CliRunner

    from bot.runtime import close_database, open_journal
    from connectors.cli import app

    replicas = [answer_settings(tmp_path, database_url=database_url, data_dir=tmp_path / n) for n in "ab"]
    try:
        for number, (text, platform, conversation, hours, answer) in enumerate(SCENARIO):
            journal = open_journal(replicas[number % 2])  # the replicas take turns answering
            asked = Question(text, asker="U0ASKER", conversation_id=conversation, platform=platform)
            await journal.record_answer(asked, answer)
            await backdate(journal, answer.id, NOW - timedelta(hours=hours))
        await open_journal(replicas[1]).record_escalation(BITCOIN.id, "U0ASKER", "slack", "C0ESCALATE")
    finally:
        for settings in replicas:
            await close_database(settings)
    monkeypatch.setenv("HELPDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path / "operator"))
    result = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--since", "30d", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["volume"]["questions"] == 6 and report["volume"]["refused"] == 2
    assert report["volume"]["escalations"] == 1 and report["escalations"][0]["answer_id"] == BITCOIN.id
    assert sorted(q["answer_id"] for gap in report["gaps"] for q in gap["questions"]) == sorted(
        [BITCOIN.id, AB_TESTING.id]
    )
