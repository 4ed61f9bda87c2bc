"""The sync schedule: cron parsing, runs on time, a failed run does not stop the next one."""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import write

from knowledge.schedule import SyncSchedule, parse_cron
from knowledge.sources import FileSource, SourceOptions


def test_cron_expressions():
    assert parse_cron("*/30 * * * *") is not None
    assert parse_cron("*/2 * * * * *") is not None
    with pytest.raises(ValueError, match="expected five fields"):
        parse_cron("every half hour")


async def test_failed_runs_are_logged_and_the_schedule_goes_on(caplog):
    calls = []

    async def flaky_sync():
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("source unreachable")

    schedule = SyncSchedule(flaky_sync, "* * * * * *")
    with caplog.at_level(logging.ERROR):
        schedule.start()
        for _ in range(60):
            await asyncio.sleep(0.1)
            if len(calls) >= 2:
                break
        schedule.stop()
    assert len(calls) >= 2
    assert schedule.failures == 1
    assert "Scheduled sync failed" in caplog.text


async def test_scheduled_syncs_pick_up_new_documents(tmp_path, make_kb):
    write(tmp_path / "kb/a.md", "# A\n\napples")
    kb = make_kb()
    reports = []

    async def run():
        reports.append(await kb.sync([FileSource(tmp_path / "kb", SourceOptions())]))
        write(tmp_path / "kb/b.md", "# B\n\nbananas")

    schedule = SyncSchedule(run, "* * * * * *")
    schedule.start()
    for _ in range(60):
        await asyncio.sleep(0.1)
        if len(reports) >= 2:
            break
    schedule.stop()
    assert len(reports[0].added) == 1 and len(reports[1].added) == 1
