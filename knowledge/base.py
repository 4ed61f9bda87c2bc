"""The knowledge base as a service: search the served index version, reload it when a sync publishes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from langchain_core.embeddings import Embeddings

from knowledge.backend import FilesBackend, IndexBackend
from knowledge.chunking import Chunker
from knowledge.index import KEYWORD_WEIGHT, Hit, QueryScores, RankedIndex, Retrieval, with_identifier_words
from knowledge.sources import Source
from knowledge.sync import KnowledgeSync, ProgressCallback, SyncReport
from knowledge.versions import all_damaged

log = logging.getLogger(__name__)


class KnowledgeBaseEmpty(RuntimeError):
    """Nothing has been synced into this data directory yet."""


class KnowledgeBase:
    """Searches the latest published index version and syncs sources into it.

    Versions live in the data directory's index folder unless another `backend` (PostgreSQL) is given.
    """

    def __init__(
        self,
        data_dir: Path,
        embeddings: Embeddings,
        chunker: Chunker,
        model_name: str,
        backend: IndexBackend | None = None,
    ):
        self.data_dir = data_dir
        self.backend = backend or FilesBackend.in_data_dir(data_dir)
        # The index folder, when versions are kept in the data directory.
        self.store = self.backend.store if isinstance(self.backend, FilesBackend) else None
        self.embeddings = embeddings
        self.syncer = KnowledgeSync(self.backend, embeddings, chunker, model_name)
        self.sync_log = self.syncer.sync_log
        self._version: RankedIndex | None = None
        self._published: str | None = None
        self._damaged: dict[tuple[str, int], str] = {}
        # The version being served, and the newer ones that failed their checks (name: what is wrong).
        self.served: str | None = None
        self.damaged: dict[str, str] = {}
        self._reload_lock = asyncio.Lock()
        self._query_vectors: dict[str, list[float]] = {}

    async def current(self) -> RankedIndex:
        """The version to serve: the one last published, reloaded when a sync publishes a newer one.

        A version that fails its checks is never served: the newest sound one is, with an error logged; if
        none is sound, IndexDamaged says to run `helpdesk sync`.
        """
        published = await self.backend.published()
        if published is None and not await self.backend.has_versions():
            msg = f"The knowledge base in {self.backend.where} is empty: run `helpdesk sync` first"
            raise KnowledgeBaseEmpty(msg)
        if self._version is None or published != self._published:
            async with self._reload_lock:
                if self._version is None or published != self._published:
                    await self._load(published)
        assert self._version is not None
        return self._version

    async def _load(self, published: str | None) -> None:
        sound = await self.backend.load_newest_sound(self.embeddings, self._damaged)
        self.damaged = sound.damaged
        if sound.version is None or sound.name is None:
            raise all_damaged(self.backend.where, sound.damaged)
        for problem in sound.damaged.values():
            log.error("%s; serving %s instead. Run `helpdesk sync` to rebuild it", problem, sound.name)
        self._version, self.served, self._published = sound.version, sound.name, published

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
        version, scores = await self._scores(query, k=k, mode=mode, rated=False)
        return version.rank(scores, k=k, mode=mode, keyword_weight=keyword_weight)

    async def retrieve(
        self, query: str, *, k: int = 5, mode: str = "hybrid", keyword_weight: float = KEYWORD_WEIGHT
    ) -> Retrieval:
        """The k best passages with a confidence that the knowledge base answers the query."""
        version, scores = await self._scores(query, k=k, mode=mode, rated=True)
        return version.rate(scores, k=k, mode=mode, keyword_weight=keyword_weight)

    async def _scores(
        self, query: str, *, k: int, mode: str, rated: bool
    ) -> tuple[RankedIndex, QueryScores | None]:
        """The served version and its scores for a query (an error code's words searched as well)."""
        version = await self.current()
        query = with_identifier_words(query)
        vector = await self.embed_query(query)
        return version, await version.aquery(vector, query, k=k, mode=mode, rated=rated)

    async def sync(
        self, sources: list[Source], *, prune_unlisted: bool = False, progress: ProgressCallback | None = None
    ) -> SyncReport:
        """Sync sources into the data directory; searches switch to the new version when it is complete.

        Every sync that ran (not one turned away because another holds the lock) is added to `sync_log`.
        """
        return await self.syncer.run(sources, prune_unlisted=prune_unlisted, progress=progress)
