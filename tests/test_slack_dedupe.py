"""The durable ledger behind Slack dedupe: one claim wins, it survives a restart, entries expire."""

from __future__ import annotations

import asyncio

from connectors.dedupe import Ledger


async def test_a_key_is_claimed_once_even_after_reopening(tmp_path):
    path = tmp_path / "events.sqlite3"
    assert await Ledger(path).claim("event:Ev1", "message:C1:1.1")
    reopened = Ledger(path)
    assert not await reopened.claim("event:Ev1")
    assert not await reopened.claim("event:Ev2", "message:C1:1.1")  # any key seen → nothing recorded
    assert await reopened.claim("event:Ev2")


async def test_concurrent_claims_have_one_winner(tmp_path):
    ledgers = [Ledger(tmp_path / "events.sqlite3") for _ in range(4)]
    results = await asyncio.gather(*(ledger.claim("event:Ev9") for ledger in ledgers for _ in range(5)))
    assert results.count(True) == 1


async def test_expired_keys_are_forgotten(tmp_path):
    ledger = Ledger(tmp_path / "events.sqlite3")
    await ledger.remember("thread:C1:1.1", ttl_s=-1)
    assert not await ledger.contains("thread:C1:1.1")
    assert await ledger.claim("thread:C1:1.1", ttl_s=60)
    assert await ledger.contains("thread:C1:1.1")


async def test_an_unwritable_ledger_file_still_dedupes_within_the_process(tmp_path, caplog):
    path = tmp_path / "events.sqlite3"
    path.mkdir()  # a directory where the database should be: no one, root included, can open it as a file
    ledger = Ledger(path)
    assert "make HELPDESK_DATA_DIR writable" in caplog.text
    assert await ledger.claim("event:Ev1")
    assert not await ledger.claim("event:Ev1")
    await ledger.remember("thread:C1:1.1", ttl_s=60)
    assert await ledger.contains("thread:C1:1.1")
    assert not await Ledger(path).contains("thread:C1:1.1")  # another process's memory is its own
