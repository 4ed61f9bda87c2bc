"""The record of recent syncs and their outcome, kept beside the index for `helpdesk status`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

# How many syncs the record keeps: a few weeks of half-hourly syncs would not fit, a day's would; the
# record answers "did the last syncs work?", the logs keep the rest.
KEEP = 100


class SyncHistory:
    """One JSON line per finished or failed sync, newest last, at most KEEP of them."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def beside(cls, index_root: Path) -> SyncHistory:
        """The record kept in an index folder."""
        return cls(index_root / "syncs.jsonl")

    def record(self, entry: dict) -> None:
        """Add a sync's entry; a data directory that cannot be written loses the entry, not the sync."""
        try:
            lines = [*self._lines()[-(KEEP - 1) :], json.dumps(entry, sort_keys=True)]
            staging = self.path.with_name(f"{self.path.name}.tmp")
            staging.write_text("\n".join(lines) + "\n")
            os.replace(staging, self.path)
        except OSError as error:
            log.debug("Could not record the sync in %s: %s", self.path, error)

    def recent(self, count: int = 5) -> list[dict]:
        """The last `count` syncs, newest first (lines that cannot be read are left out)."""
        entries = []
        for line in reversed(self._lines()):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
            if len(entries) == count:
                break
        return entries

    def _lines(self) -> list[str]:
        try:
            return [line for line in self.path.read_text().splitlines() if line.strip()]
        except (FileNotFoundError, NotADirectoryError):
            return []
