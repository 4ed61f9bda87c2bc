"""Where index versions live: the contract every index storage fulfils, and the data directory's folders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from langchain_core.embeddings import Embeddings

from knowledge.documents import Chunk
from knowledge.index import IndexVersion, RankedIndex
from knowledge.store import IndexStore
from knowledge.sync_log import SyncLog
from knowledge.versions import SoundVersion, load_newest_sound


class DatabaseUnavailable(RuntimeError):
    """The database of HELPDESK_DATABASE_URL cannot be reached; the message says what to check."""


class PgvectorMissing(RuntimeError):
    """The PostgreSQL server has no pgvector extension, or it may not be enabled by this user."""


@dataclass
class NewVersion:
    """What a sync writes: the version it builds on minus some documents, plus new chunks with vectors.

    `manifest["counts"]["passages"]` is filled in by the backend once the passages are merged.
    """

    base: RankedIndex | None
    removed: set[str]
    chunks: list[Chunk]
    vectors: list[list[float]]
    manifest: dict
    dimension: int
    embeddings: Embeddings


@dataclass(frozen=True)
class WrittenVersion:
    """A version fully written but not served yet, and how many entries (passages, titles…) it holds."""

    name: str
    entries: int


class SyncRecord(Protocol):
    """The record of syncs, entries as `sync_entry` makes them: written by the sync, read by status, report, admin.

    Recording never fails the sync, only loses the entry.
    """

    async def record(self, entry: dict) -> None:
        """Add a sync's entry, dropping those past the retention."""
        ...

    async def entries(self, since: datetime | None = None) -> list[dict]:
        """Syncs started at or after `since` (all kept, without it), oldest first."""
        ...

    async def recent(self, count: int = 5) -> list[dict]:
        """The last `count` syncs, newest first."""
        ...


class IndexBackend(Protocol):
    """Storage of index versions: written beside the served one, published atomically, searched.

    Only one sync writes at a time (`locked`); readers keep the version they loaded until they see
    `published()` change, then load the new one with `load_newest_sound`.
    """

    where: str  # for messages: the data directory, or "the PostgreSQL database"
    sync_log: SyncRecord  # every sync that ran, written by KnowledgeSync.run under the lock

    def locked(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the one sync lock, or raise SyncInProgress at once."""
        ...

    async def check_writable(self) -> None:
        """Raise now, before any work, if no version could be written."""
        ...

    async def published(self) -> str | None:
        """The name of the version last published, or None before the first sync; cheap, asked per question."""
        ...

    async def has_versions(self) -> bool:
        """Whether any version was ever written."""
        ...

    async def load_newest_sound(
        self, embeddings: Embeddings, known_damaged: dict | None = None
    ) -> SoundVersion:
        """The version last published, or the newest one that passes its checks, ready to search."""
        ...

    async def write(self, new: NewVersion) -> WrittenVersion:
        """Write a new version, invisible to readers until it is published."""
        ...

    async def publish(self, written: WrittenVersion, damaged: dict[str, str]) -> str:
        """Make a written version the served one in one step, drop old and damaged ones; its final name."""
        ...


class FilesBackend:
    """Index versions as folders of the data directory: FAISS and BM25 files, switched by a pointer file."""

    def __init__(self, store: IndexStore):
        self.store = store
        self.where = str(store.root.parent)
        self.sync_log = SyncLog.of(store)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> FilesBackend:
        """The index folder of a data directory."""
        return cls(IndexStore.in_data_dir(data_dir))

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        with self.store.lock():
            yield

    async def check_writable(self) -> None:
        self.store.check_writable()

    async def published(self) -> str | None:
        return self.store.pointer()

    async def has_versions(self) -> bool:
        return self.store.pointer() is not None or bool(self.store.versions())

    async def load_newest_sound(
        self, embeddings: Embeddings, known_damaged: dict | None = None
    ) -> SoundVersion:
        return await asyncio.to_thread(load_newest_sound, self.store, embeddings, known_damaged)

    async def write(self, new: NewVersion) -> WrittenVersion:
        base = new.base
        if not isinstance(base, IndexVersion):
            base = IndexVersion.empty(new.embeddings, new.dimension, {})
        base.remove_documents(new.removed)
        base.add_chunks(new.chunks, new.vectors)
        base.build_keyword_index()
        new.manifest["counts"]["passages"] = sum(chunk.kind == "passage" for chunk in base.chunks)
        base.manifest = new.manifest
        building = self.store.building_dir()
        with self.store.writing():
            await asyncio.to_thread(base.save, building)
        return WrittenVersion(building.name, len(base))

    async def publish(self, written: WrittenVersion, damaged: dict[str, str]) -> str:
        with self.store.writing():
            published = self.store.publish(self.store.root / written.name)
        self.store.prune(damaged=damaged)
        return published.name
