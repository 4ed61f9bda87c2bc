"""Incremental sync: re-embed only new and changed documents, drop deleted ones, publish atomically."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from langchain_core.embeddings import Embeddings

from knowledge.backend import IndexBackend, NewVersion
from knowledge.chunking import Chunker
from knowledge.documents import Chunk, Skipped, SourceDocument
from knowledge.index import RankedIndex, with_document_vectors
from knowledge.sources import LoadError, Source, SourceUnavailable
from knowledge.sync_log import sync_entry

log = logging.getLogger(__name__)
ProgressCallback = Callable[[str, int, int | None], None]
MANIFEST_FORMAT = 2


@dataclass
class SyncReport:
    """What a sync did: document counts by outcome, skipped inputs with reasons, and how long it took."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    documents_total: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    version: str | None = None
    # Damaged versions found (and replaced by this sync), each with what was wrong.
    damaged: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when the sync published a new index version."""
        return bool(self.added or self.updated or self.deleted)

    def to_dict(self) -> dict:
        """A JSON-ready summary."""
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged,
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
            "chunks_embedded": self.chunks_embedded,
            "documents_total": self.documents_total,
            "chunks_total": self.chunks_total,
            "seconds": round(self.seconds, 3),
            "version": self.version,
            "damaged": dict(self.damaged),
        }


@dataclass
class _Plan:
    """The next manifest under construction, and the documents that need embedding."""

    origins: dict[str, dict] = field(default_factory=dict)
    documents: dict[str, dict] = field(default_factory=dict)
    to_embed: list[tuple[str, SourceDocument]] = field(default_factory=list)


class KnowledgeSync:
    """Brings the index in line with the sources, building each new version beside the served one."""

    def __init__(
        self,
        backend: IndexBackend,
        embeddings: Embeddings,
        chunker: Chunker,
        model_name: str,
        batch_size: int = 64,
    ):
        self.backend = backend
        self.embeddings = embeddings
        self.chunker = chunker
        self.model_name = model_name
        self.batch_size = batch_size
        self.sync_log = backend.sync_log

    def _compatible(self, manifest: dict) -> bool:
        return (
            manifest.get("format") == MANIFEST_FORMAT
            and manifest.get("embedding_model") == self.model_name
            and manifest.get("chunking") == self.chunker.config
        )

    async def run(
        self, sources: list[Source], *, prune_unlisted: bool = False, progress: ProgressCallback | None = None
    ) -> SyncReport:
        """Sync the given sources; with prune_unlisted, documents of any other source are deleted.

        A damaged version is never built on: the sync starts from the newest sound one (or from nothing)
        and publishes a new version even if no document changed, so the damaged one is served no more.
        """
        started_at, started = datetime.now(UTC), time.perf_counter()
        async with self.backend.locked():  # every sync that ran is recorded, under the lock
            try:
                report = await self._run_locked(sources, prune_unlisted, progress)
            except Exception as error:
                await self.sync_log.record(sync_entry(started_at, error=error))
                raise
            report.seconds = time.perf_counter() - started
            await self.sync_log.record(sync_entry(started_at, report=report))
        return report

    async def _run_locked(
        self, sources, prune_unlisted: bool, progress: ProgressCallback | None
    ) -> SyncReport:
        notify = progress or (lambda stage, done, total: None)
        await self.backend.check_writable()
        sound = await self.backend.load_newest_sound(self.embeddings)
        previous = sound.version
        if sound.damaged:
            base = sound.name or "nothing (every version is damaged)"
            for problem in sound.damaged.values():
                log.error("%s; this sync builds on %s instead", problem, base)
        manifest = previous.manifest if previous and self._compatible(previous.manifest) else {}
        report, plan = SyncReport(damaged=sound.damaged), _Plan()
        await self._scan(sources, manifest, plan, report, notify)
        self._carry_unlisted(sources, manifest, plan, prune_unlisted)
        self._classify(previous.manifest.get("documents", {}) if previous else {}, plan, report)
        if report.changed or previous is None or sound.name != await self.backend.published():
            report.version = await self._build(previous if manifest else None, plan, report, notify)
        else:
            report.version = sound.name
            report.chunks_total = len(previous)
        report.documents_total = len(plan.documents)
        return report

    async def _scan(self, sources, manifest, plan: _Plan, report: SyncReport, notify) -> None:
        previous_origins = manifest.get("origins", {})
        scanned = 0
        for source in sources:
            try:
                async for item in source.scan():
                    scanned += 1
                    notify("scan", scanned, None)
                    await self._take(source, item, manifest, plan, report)
            except SourceUnavailable as error:
                report.skipped.append(Skipped(source.name, str(error)))
                for origin, entry in previous_origins.items():
                    if entry["source"] == source.name and origin not in plan.origins:
                        self._carry(origin, manifest, plan)

    async def _take(self, source, item, manifest, plan: _Plan, report: SyncReport) -> None:
        previous_origins = manifest.get("origins", {})
        origin = f"{source.name}|{item.where if isinstance(item, Skipped) else item.key}"
        if isinstance(item, Skipped):
            self._skip(item, origin, manifest, plan, report)
            return
        if previous_origins.get(origin, {}).get("fingerprint") == item.fingerprint:
            self._carry(origin, manifest, plan)
            return
        try:
            results = await item.load()
        except LoadError as error:
            self._skip(Skipped(item.key, str(error)), origin, manifest, plan, report)
            return
        except Exception as error:  # a parser bug on one file must not stop the sync
            self._skip(
                Skipped(item.key, f"unexpected {type(error).__name__}: {error}"),
                origin,
                manifest,
                plan,
                report,
            )
            return
        doc_keys = []
        for result in results:
            if isinstance(result, Skipped):
                report.skipped.append(result)
                continue
            doc_key = f"{source.name}|{result.doc_id}"
            if doc_key in plan.documents:
                report.skipped.append(
                    Skipped(item.key, f"duplicate document id {result.doc_id!r}; rename one file")
                )
                continue
            doc_keys.append(doc_key)
            before = manifest.get("documents", {}).get(doc_key)
            if before and before["fingerprint"] == result.fingerprint:
                plan.documents[doc_key] = before
            else:
                plan.documents[doc_key] = _document_entry(result, origin)
                plan.to_embed.append((doc_key, result))
        plan.origins[origin] = {"source": source.name, "fingerprint": item.fingerprint, "doc_keys": doc_keys}

    def _skip(self, skipped: Skipped, origin: str, manifest, plan: _Plan, report: SyncReport) -> None:
        kept = skipped.keep_previous and origin in manifest.get("origins", {})
        if kept:
            self._carry(origin, manifest, plan)
            skipped = Skipped(skipped.where, f"{skipped.reason} (kept the last good version)")
        report.skipped.append(skipped)

    @staticmethod
    def _carry(origin: str, manifest: dict, plan: _Plan) -> None:
        entry = manifest["origins"][origin]
        plan.origins[origin] = entry
        for doc_key in entry["doc_keys"]:
            plan.documents.setdefault(doc_key, manifest["documents"][doc_key])

    def _carry_unlisted(self, sources, manifest, plan: _Plan, prune_unlisted: bool) -> None:
        if prune_unlisted:
            return
        listed = {source.name for source in sources}
        for origin, entry in manifest.get("origins", {}).items():
            if entry["source"] not in listed:
                self._carry(origin, manifest, plan)

    @staticmethod
    def _classify(previous_documents: dict, plan: _Plan, report: SyncReport) -> None:
        embedded = {doc_key for doc_key, _ in plan.to_embed}
        for doc_key in plan.documents:
            if doc_key in embedded:
                (report.updated if doc_key in previous_documents else report.added).append(doc_key)
            else:
                report.unchanged += 1
        report.deleted = [key for key in previous_documents if key not in plan.documents]

    async def _embed(self, chunks: list[Chunk], notify) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(chunks), self.batch_size):
            batch = [c.embedding_text() for c in chunks[start : start + self.batch_size]]
            vectors.extend(await asyncio.to_thread(self.embeddings.embed_documents, batch))
            notify("embed", len(vectors), len(chunks))
        return vectors

    async def _build(self, base: RankedIndex | None, plan: _Plan, report: SyncReport, notify) -> str:
        chunks = [chunk for doc_key, doc in plan.to_embed for chunk in self.chunker.split(doc_key, doc)]
        notify("embed", 0, len(chunks))
        vectors = await self._embed(chunks, notify)
        report.chunks_embedded = len(chunks)
        chunks, vectors = with_document_vectors(chunks, vectors)
        dimension = (
            len(vectors[0]) if vectors else 0 if base else len(self.embeddings.embed_query("dimension"))
        )
        notify("write", 0, None)
        manifest = {
            "format": MANIFEST_FORMAT,
            "counts": {"documents": len(plan.documents)},
            "embedding_model": self.model_name,
            "chunking": self.chunker.config,
            "created_at": datetime.now(UTC).isoformat(),
            "origins": plan.origins,
            "documents": plan.documents,
        }
        removed = set(report.updated) | set(report.deleted)
        new = NewVersion(base, removed, chunks, vectors, manifest, dimension, self.embeddings)
        written = await self.backend.write(new)
        published = await self.backend.publish(written, report.damaged)
        report.chunks_total = written.entries
        return published


def _document_entry(document: SourceDocument, origin: str) -> dict:
    return {
        "doc_id": document.doc_id,
        "title": document.title,
        "source": document.source,
        "updated_at": document.updated_at.isoformat() if document.updated_at else None,
        "fingerprint": document.fingerprint,
        "origin": origin,
    }
