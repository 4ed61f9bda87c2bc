"""The history of syncs (when, what changed, what was skipped and why), as JSON lines in the data dir."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from knowledge.sync import SyncReport

log = logging.getLogger(__name__)

# Document keys listed per outcome in one entry; a first sync of a large knowledge base lists only counts.
MAX_KEYS_LISTED = 200


class SyncLog:
    """Appends one line per sync to `syncs.jsonl`; a log that cannot be written never fails a sync."""

    def __init__(self, path: Path):
        self.path = path

    def record(self, started_at: float, report: SyncReport | None, error: Exception | None = None) -> None:
        """Append what a sync did (or the error that stopped it)."""
        entry: dict = {"started_at": started_at, "finished_at": time.time()}
        if report is not None:
            entry |= report.to_dict()
            for outcome in ("added", "updated", "deleted"):
                keys = getattr(report, outcome)
                entry[f"{outcome}_documents"] = keys[:MAX_KEYS_LISTED]
        if error is not None:
            entry["error"] = f"{type(error).__name__}: {error}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as lines:
                lines.write(json.dumps(entry) + "\n")
        except OSError as failure:
            log.error("Could not record the sync in %s: %s", self.path, failure)

    def entries(self, since: float = 0.0) -> list[dict]:
        """Syncs started at or after a Unix time, oldest first (unreadable lines are left out)."""
        if not self.path.is_file():
            return []
        entries = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("started_at", 0) >= since:
                entries.append(entry)
        return entries
