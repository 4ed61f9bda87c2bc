"""The one record of syncs (when, outcome, what changed, what was skipped and why), as JSON lines."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from knowledge.store import IndexStore
    from knowledge.sync import SyncReport

log = logging.getLogger(__name__)

# Document keys listed per outcome in one entry; a first sync of a large knowledge base lists only counts.
MAX_KEYS_LISTED = 200
# Syncs are kept for 31 days: the longest period the report and the admin page show is 30 days (the
# month view, `helpdesk report --since 30d`), plus one day because the report counts whole UTC days.
# A cron sync every 5 minutes that changes nothing writes ~0.4 KB, about 4 MB a month.
KEEP_DAYS = 31
# However old they are, the last syncs are kept, so `helpdesk status` shows them for a rarely synced base.
KEEP_AT_LEAST = 10
# Old entries are dropped once the oldest is a day past KEEP_DAYS, so the file is rewritten once a day at
# most, not at every sync.
PRUNE_SLACK = timedelta(days=1)


def sync_entry(
    started_at: datetime, report: SyncReport | None = None, error: Exception | None = None
) -> dict:
    """The record of one sync: its outcome, counts, the documents it changed, what it skipped and why."""
    entry: dict = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "outcome": "ok" if error is None else "failed",
    }
    if report is not None:
        entry |= report.to_dict()
        for outcome in ("added", "updated", "deleted"):
            entry[f"{outcome}_documents"] = getattr(report, outcome)[:MAX_KEYS_LISTED]
    if error is not None:
        entry["error"] = str(error) or type(error).__name__
    return entry


def entry_started(entry: dict) -> datetime:
    """When an entry's sync started (the earliest time for an entry that does not say)."""
    try:
        moment = datetime.fromisoformat(str(entry.get("started_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SyncLog:
    """`<data dir>/syncs.jsonl`, oldest first; written by the sync itself, under the sync lock.

    A data directory that cannot be written loses the entry, never the sync.
    """

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def of(cls, store: IndexStore) -> SyncLog:
        """The record of the syncs of an index's data directory."""
        return cls(store.root.parent / "syncs.jsonl")

    async def record(self, entry: dict) -> None:
        """Append a sync's entry, dropping those past the retention."""
        await asyncio.to_thread(self._record, entry)

    def _record(self, entry: dict) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as lines:
                lines.write(json.dumps(entry) + "\n")
            self._prune(entry_started(entry))
        except OSError as failure:
            log.warning("Could not record the sync in %s: %s", self.path, failure)

    def _prune(self, now: datetime) -> None:
        entries = self.read()
        cutoff = now - timedelta(days=KEEP_DAYS)
        if not entries or entry_started(entries[0]) >= cutoff - PRUNE_SLACK:
            return
        kept = [
            e
            for i, e in enumerate(entries)
            if entry_started(e) >= cutoff or i >= len(entries) - KEEP_AT_LEAST
        ]
        if len(kept) == len(entries):
            return
        staging = self.path.with_name(f"{self.path.name}.tmp")
        staging.write_text("".join(json.dumps(entry) + "\n" for entry in kept), encoding="utf-8")
        os.replace(staging, self.path)

    async def entries(self, since: datetime | None = None) -> list[dict]:
        """Syncs started at or after `since` (all kept, without it), oldest first; unreadable lines left out."""
        return await asyncio.to_thread(self.read, since)

    async def recent(self, count: int = 5) -> list[dict]:
        """The last `count` syncs, newest first."""
        return await asyncio.to_thread(self.last, count)

    def read(self, since: datetime | None = None) -> list[dict]:
        """`entries`, read at once (blocking)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and (since is None or entry_started(entry) >= since):
                entries.append(entry)
        return entries

    def last(self, count: int) -> list[dict]:
        """`recent`, read at once (blocking)."""
        return self.read()[-count:][::-1]
