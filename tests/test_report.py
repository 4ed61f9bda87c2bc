"""`helpdesk report`: volume, votes and times per period, coverage gaps grouped by meaning, articles, syncs."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import SMALL_KB, answer_settings, write
from journal_seed import earlier_today, seed
from typer.testing import CliRunner

from bot.report import STALE_AFTER_DAYS, build_report, parse_period

NOW = datetime.now(UTC)
WEEK = timedelta(days=7)


async def test_volume_votes_times_articles_syncs_and_escalations_of_the_period(helpdesk_bot):
    journal, kb = helpdesk_bot.journal, helpdesk_bot.chain.retriever.knowledge_base
    refunds = await seed(
        journal,
        "How do I start a refund?",
        NOW - timedelta(days=2),
        cited=("billing/refunds",),
        votes=(1, 1),
        total_ms=400,
    )
    await seed(
        journal,
        "Who do I email for a refund?",
        NOW - timedelta(days=1),
        cited=("billing/refunds",),
        votes=(-1,),
        total_ms=600,
    )
    bitcoin = await seed(journal, "Can I pay in bitcoin?", earlier_today(NOW, 1), refused=True, total_ms=200)
    await seed(journal, "An old question", NOW - timedelta(days=9), cited=("account/password",))
    await journal.record_escalation(bitcoin.id, "U0ASKER", "slack", "C0ESCALATE")

    report = (await build_report(journal, kb, kb.embeddings, WEEK, now=NOW)).to_dict()

    assert report["volume"] == {
        "questions": 3,
        "answered": 2,
        "refused": 1,
        "up_votes": 2,
        "down_votes": 1,
        "escalations": 1,
        "median_answer_ms": 400.0,
        "p95_answer_ms": 580.0,
    }
    assert len(report["per_day"]) == 8 and sum(d["questions"] for d in report["per_day"]) == 3
    assert report["per_day"][-1] == {
        "date": NOW.date().isoformat(),
        "questions": 1,
        "answered": 0,
        "refused": 1,
    }
    # The refusal and the answer with more 👎 than 👍 are the gaps; the well-rated answer is not.
    assert sorted(q["question"] for g in report["gaps"] for q in g["questions"]) == [
        "Can I pay in bitcoin?",
        "Who do I email for a refund?",
    ]
    assert all(len(g["closest_articles"]) == 3 for g in report["gaps"])
    assert [(a["doc_id"], a["citations"]) for a in report["articles"]["most_cited"]] == [
        ("billing/refunds", 2)
    ]
    assert [a["doc_id"] for a in report["articles"]["never_cited"]] == ["account/password", "status/outages"]
    assert report["articles"]["stale"] == []  # just synced
    [escalation] = report["escalations"]
    assert escalation["question"] == "Can I pay in bitcoin?" and escalation["platform"] == "slack"
    [sync] = report["syncs"]  # the fixture's sync
    source = await kb_source(kb)
    assert sorted(sync["added"]) == sorted(f"{source}|{name[:-3]}" for name in SMALL_KB)
    assert sync["skipped"] == [] and sync["error"] is None
    assert refunds.id not in {q["answer_id"] for g in report["gaps"] for q in g["questions"]}


async def kb_source(kb) -> str:
    return next(iter(await kb.sync_log.entries()))["added_documents"][0].split("|")[0]


async def test_articles_cited_often_but_long_unchanged_are_stale(helpdesk_bot):
    journal, kb = helpdesk_bot.journal, helpdesk_bot.chain.retriever.knowledge_base
    later = NOW + timedelta(days=STALE_AFTER_DAYS + 10)
    for day in range(3):
        await seed(journal, f"refunds {day}?", later - timedelta(days=day), cited=("billing/refunds",))
    await seed(journal, "password?", later, cited=("account/password",))

    report = await build_report(journal, kb, kb.embeddings, WEEK, now=later)

    [stale] = report.articles["stale"]
    assert stale["doc_id"] == "billing/refunds" and stale["citations"] == 3
    assert stale["days_since_update"] >= STALE_AFTER_DAYS


def test_periods_are_read_in_hours_days_or_weeks():
    assert parse_period("7d") == timedelta(days=7) and parse_period("12h") == timedelta(hours=12)
    assert parse_period("2w") == timedelta(days=14)
    with pytest.raises(ValueError, match="such as 12h, 7d or 4w"):
        parse_period("a week")


# Four ways to ask about paying in crypto, three about QuickBooks, and two questions on their own.
CRYPTO = [
    "Can I pay my invoice in bitcoin?",
    "Do you accept cryptocurrency payments?",
    "is paying with crypto like BTC possible",
    "Can I use Bitcoin to pay?",
]
QUICKBOOKS = [
    "How do I export my data to QuickBooks?",
    "Is there a QuickBooks integration?",
    "sync invoices with quickbooks",
]
ALONE = ["What is your office address in Berlin?", "Do you have a mobile app for Android?"]


@pytest.mark.slow
async def test_gaps_group_paraphrases_and_keep_unrelated_questions_apart(tmp_path, monkeypatch):
    from bot.runtime import open_journal, open_knowledge_base, open_sources

    for name, text in SMALL_KB.items():
        write(tmp_path / "small-kb" / name, text)
    settings = answer_settings(tmp_path)
    kb = open_knowledge_base(settings)  # the packaged MiniLM, as `helpdesk report` uses it
    await kb.sync(open_sources(settings))
    journal = open_journal(settings)
    for hours, question in enumerate(CRYPTO + ALONE):
        await seed(journal, question, NOW - timedelta(hours=hours + 1), refused=True)
    for hours, question in enumerate(QUICKBOOKS):  # answered, but voted down
        await seed(
            journal, question, NOW - timedelta(hours=hours + 1), cited=("billing/refunds",), votes=(-1,)
        )
    await seed(journal, "How do I start a refund?", NOW, cited=("billing/refunds",), votes=(1,))

    report = await build_report(journal, kb, kb.embeddings, WEEK)

    groups = [sorted(q["question"] for q in gap["questions"]) for gap in report.gaps]
    assert groups == [sorted(CRYPTO), sorted(QUICKBOOKS), *sorted([[q] for q in ALONE])] or groups == [
        sorted(CRYPTO),
        sorted(QUICKBOOKS),
        *sorted([[q] for q in ALONE], reverse=True),
    ]
    crypto = report.gaps[0]
    assert len(crypto["examples"]) == 3 and set(crypto["examples"]) <= set(CRYPTO)
    assert crypto["refused"] == 4 and report.gaps[1]["down_voted"] == 3
    assert crypto["first_seen"] < crypto["last_seen"]
    assert crypto["closest_articles"][0]["doc_id"] in {
        "billing/refunds",
        "account/password",
        "status/outages",
    }
    assert 0 < crypto["closest_articles"][0]["similarity"] < 0.6

    # The same report from the command line: JSON, a CSV of the gaps, and tables.
    from connectors.cli import app

    monkeypatch.setenv("HELPDESK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HELPDESK_LOG_LEVEL", "WARNING")
    runner = CliRunner()

    def invoke(*args: str):
        return asyncio.to_thread(runner.invoke, app, list(args))

    as_json = await invoke("report", "--since", "30d", "--json")
    assert as_json.exit_code == 0, as_json.output
    printed = json.loads(as_json.stdout)
    assert [g["size"] for g in printed["gaps"]] == [4, 3, 1, 1] and printed["volume"]["questions"] == 10
    assert (await invoke("report", "--csv", str(tmp_path / "gaps.csv"))).exit_code == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "gaps.csv").read_text())))
    assert [row["size"] for row in rows] == ["4", "3", "1", "1"] and rows[0]["example_1"] in CRYPTO
    text = (await invoke("report")).stdout
    assert "Coverage gaps (4)" in text and "Questions per day" in text and "Syncs" in text
