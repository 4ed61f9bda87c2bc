"""The one record of syncs: one file written by the sync, read by `helpdesk status` and the report alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import write

from knowledge.sources import FileSource, SourceOptions
from knowledge.sync_log import KEEP_AT_LEAST, KEEP_DAYS, SyncLog, sync_entry
from knowledge.versions import index_health


async def test_one_record_serves_status_and_the_report(tmp_path, make_kb):
    write(tmp_path / "kb/a.md", "# Apples\n\nApples grow on trees.\n")
    write(tmp_path / "kb/bad.md", b"\xff\xfe\x00 not text")
    kb = make_kb()
    await kb.sync([FileSource(tmp_path / "kb", SourceOptions())])

    assert [path.name for path in tmp_path.rglob("syncs.jsonl")] == ["syncs.jsonl"]
    assert kb.sync_log.path == tmp_path / "data" / "syncs.jsonl"
    [status_entry] = index_health(kb.store)["last_syncs"]
    [report_entry] = await kb.sync_log.entries(since=datetime.now(UTC) - timedelta(days=30))
    assert status_entry == report_entry
    assert status_entry["outcome"] == "ok" and status_entry["added"] == 1
    assert [key.split("|")[1] for key in status_entry["added_documents"]] == ["a"]
    assert [skipped["where"] for skipped in status_entry["skipped"]] == ["bad.md"]


async def test_syncs_older_than_the_retention_are_dropped_but_the_last_ones_stay(tmp_path):
    log = SyncLog(tmp_path / "syncs.jsonl")
    now = datetime(2026, 12, 6, tzinfo=UTC)
    old = [now - timedelta(days=KEEP_DAYS + 40 - day) for day in range(KEEP_AT_LEAST + 5)]
    for started in old:
        await log.record(sync_entry(started))
    assert len(await log.entries()) == KEEP_AT_LEAST + 5  # nothing newer yet: syncs kept however old
    recent = [now - timedelta(days=KEEP_DAYS - 1), now]
    for started in recent:
        await log.record(sync_entry(started))
    kept = [datetime.fromisoformat(entry["started_at"]) for entry in await log.entries()]
    assert kept == [*old[-(KEEP_AT_LEAST - 2) :], *recent]
    outcomes = [json.loads(line)["outcome"] for line in log.path.read_text().splitlines()]
    assert outcomes == ["ok"] * KEEP_AT_LEAST
