"""The knowledge base as a service: search the served index version, reload it when a sync publishes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from langchain_core.embeddings import Embeddings

from knowledge.chunking import Chunker
from knowledge.index import KEYWORD_WEIGHT, Hit, IndexVersion, Retrieval
from knowledge.sources import Source
from knowledge.store import IndexStore, SyncInProgress
from knowledge.sync import KnowledgeSync, ProgressCallback, SyncReport
from knowledge.sync_log import SyncLog


class KnowledgeBaseEmpty(RuntimeError):
    """Nothing has been synced into this data directory yet."""


class KnowledgeBase:
    """Searches the latest published index version of a data directory and syncs sources into it."""

    def __init__(self, data_dir: Path, embeddings: Embeddings, chunker: Chunker, model_name: str):
        self.data_dir = data_dir
        self.store = IndexStore(data_dir / "index")
        self.embeddings = embeddings
        self.syncer = KnowledgeSync(self.store, embeddings, chunker, model_name)
        self.sync_log = SyncLog(data_dir / "syncs.jsonl")
        self._version: IndexVersion | None = None
        self._version_path: Path | None = None
        self._reload_lock = asyncio.Lock()
        self._query_vectors: dict[str, list[float]] = {}

    async def current(self) -> IndexVersion:
        """The served version, reloaded if a sync has published a newer one since."""
        path = self.store.current()
        if path is None:
            msg = f"The knowledge base in {self.data_dir} is empty: run `helpdesk sync` first"
            raise KnowledgeBaseEmpty(msg)
        if path != self._version_path:
            async with self._reload_lock:
                if path != self._version_path:
                    self._version = await asyncio.to_thread(IndexVersion.load, path, self.embeddings)
                    self._version_path = path
        assert self._version is not None
        return self._version

    async def embed_query(self, text: str) -> list[float]:
        """The query's vector, computed off the event loop (recent queries are remembered)."""
        vector = self._query_vectors.get(text)
        if vector is None:
            vector = await asyncio.to_thread(self.embeddings.embed_query, text)
            if len(self._query_vectors) >= 256:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            self._query_vectors[text] = vector
        return vector

    async def search(
        self, query: str, *, k: int = 5, mode: str = "hybrid", keyword_weight: float = KEYWORD_WEIGHT
    ) -> list[Hit]:
        """The k best passages for a query, one per document, best first."""
        version = await self.current()
        vector = await self.embed_query(query)
        return version.search(vector, query, k=k, mode=mode, keyword_weight=keyword_weight)

    async def retrieve(
        self, query: str, *, k: int = 5, mode: str = "hybrid", keyword_weight: float = KEYWORD_WEIGHT
    ) -> Retrieval:
        """The k best passages with a confidence that the knowledge base answers the query."""
        version = await self.current()
        vector = await self.embed_query(query)
        return version.retrieve(vector, query, k=k, mode=mode, keyword_weight=keyword_weight)

    async def sync(
        self, sources: list[Source], *, prune_unlisted: bool = False, progress: ProgressCallback | None = None
    ) -> SyncReport:
        """Sync sources into the data directory; searches switch to the new version when it is complete.

        Every sync that ran (not one turned away because another holds the lock) is added to the sync log.
        """
        started_at = time.time()
        try:
            report = await self.syncer.run(sources, prune_unlisted=prune_unlisted, progress=progress)
        except SyncInProgress:
            raise
        except Exception as error:
            await asyncio.to_thread(self.sync_log.record, started_at, None, error)
            raise
        await asyncio.to_thread(self.sync_log.record, started_at, report)
        return report
