"""Answers learnt from people: one JSON file per entry in the data directory, a source like any other."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.base import LoadError, SourceItem

LEARNT_SOURCE = "learnt"
_ENTRY_ID = re.compile(r"^[0-9a-f]{12}$")


class UnknownEntry(LookupError):
    """No learnt answer has this id."""


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LearntEntry:
    """A question and a person's reply to it, saved so the bot answers it next time, citing that person."""

    question: str
    answer: str
    answered_by: str
    answered_by_id: str
    platform: str
    link: str | None = None
    answer_id: str | None = None
    saved_at: str = field(default_factory=_now)
    id: str = field(default_factory=_new_id)

    @property
    def citation_title(self) -> str:
        """How answers cite the entry: "Answered by Dana, 2026-12-06"."""
        return f"Answered by {self.answered_by}, {self.saved_at[:10]}"

    def document(self) -> SourceDocument:
        """The entry as a document: cited by who answered and when, found by its question and its reply."""
        return SourceDocument(
            doc_id=f"{LEARNT_SOURCE}/{self.id}",
            title=self.citation_title,
            text=self.answer,
            source=self.link or f"{LEARNT_SOURCE}/{self.id}",
            updated_at=datetime.fromisoformat(self.saved_at),
            text_format="text",
            headings=(self.question,),
        )


def check_entry_id(entry_id: str) -> None:
    """UnknownEntry for text that cannot be a learnt answer's id."""
    if not _ENTRY_ID.match(entry_id):
        msg = f"{entry_id!r} is not a learnt answer id (12 hex digits, as `helpdesk status` lists them)"
        raise UnknownEntry(msg)


def no_such_entry(entry_id: str) -> UnknownEntry:
    """The error for an id no learnt answer has."""
    msg = f"No learnt answer {entry_id!r}: `helpdesk status` lists them"
    return UnknownEntry(msg)


def entry_json(entry: LearntEntry) -> bytes:
    """An entry as stored and hashed: the same bytes whichever store keeps it."""
    return json.dumps(asdict(entry), ensure_ascii=False, indent=1).encode()


def entry_item(entry_id: str, raw: bytes) -> SourceItem:
    """The source item of a stored entry (its id and bytes), loaded into its document on demand."""
    name = f"{entry_id}.json"

    async def load() -> list[SourceDocument | Skipped]:
        try:
            entry = LearntEntry(**json.loads(raw))
        except (ValueError, TypeError) as error:
            msg = f"not a learnt answer ({error}); remove it with `helpdesk forget {entry_id}`"
            raise LoadError(msg) from None
        return [entry.document()]

    return SourceItem(name, content_hash(raw), load)


class LearntStore(Protocol):
    """Where learnt answers are kept (the data directory, or PostgreSQL): a source too, indexing them."""

    name: str
    where: str  # the folder or database, as `helpdesk status` shows it

    async def require(self, entry_id: str) -> None:
        """UnknownEntry when there is no entry with this id."""

    async def save(self, entry: LearntEntry) -> None:
        """Store an entry."""

    async def remove(self, entry_id: str) -> None:
        """Delete an entry; UnknownEntry when there is none with this id."""

    async def entries(self) -> list[LearntEntry]:
        """Every readable entry, oldest first."""

    def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """One source item per entry."""


class LearntAnswers:
    """The folder of learnt answers (`<data dir>/learnt/ENTRY_ID.json`); also the source that indexes them.

    Its calls run off the event loop; knowledge.sources.pg_learnt keeps the same entries in PostgreSQL.
    """

    name = LEARNT_SOURCE

    def __init__(self, folder: Path):
        self.folder = folder
        self.where = str(folder)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> LearntAnswers:
        """The learnt answers of a data directory."""
        return cls(data_dir / "learnt")

    def _path(self, entry_id: str) -> Path:
        check_entry_id(entry_id)
        return self.folder / f"{entry_id}.json"

    def _existing(self, entry_id: str) -> Path:
        path = self._path(entry_id)
        if not path.is_file():
            raise no_such_entry(entry_id)
        return path

    async def require(self, entry_id: str) -> None:
        """UnknownEntry when there is no entry with this id."""
        await asyncio.to_thread(self._existing, entry_id)

    async def save(self, entry: LearntEntry) -> None:
        """Write an entry (atomically: a half-written file is never indexed)."""
        await asyncio.to_thread(self._save, entry)

    def _save(self, entry: LearntEntry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(entry.id)
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_bytes(entry_json(entry))
        os.replace(staging, path)

    async def remove(self, entry_id: str) -> None:
        """Delete an entry (a damaged file too); UnknownEntry when there is none with this id."""
        path = await asyncio.to_thread(self._existing, entry_id)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def entries(self) -> list[LearntEntry]:
        """Every readable entry, oldest first."""
        return await asyncio.to_thread(self._entries)

    def _entries(self) -> list[LearntEntry]:
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append(LearntEntry(**json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda entry: entry.saved_at)

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """One item per entry file (no folder yet: no entries); the files are read off the event loop."""
        for path, raw in await asyncio.to_thread(self._raw_files):
            if isinstance(raw, OSError):
                yield Skipped(path.name, f"cannot be read: {raw.strerror or raw}")
            else:
                yield entry_item(path.stem, raw)

    def _raw_files(self) -> list[tuple[Path, bytes | OSError]]:
        files: list[tuple[Path, bytes | OSError]] = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                files.append((path, path.read_bytes()))
            except OSError as error:
                files.append((path, error))
        return files
