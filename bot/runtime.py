"""Builds the knowledge base and its sources from Settings; the one place settings become objects."""

from __future__ import annotations

from bot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.embeddings import embedding_model_name, load_embeddings
from knowledge.sources import Source, SourceOptions, open_source


def open_knowledge_base(settings: Settings) -> KnowledgeBase:
    """The knowledge base in the configured data directory, with the configured embedding model."""
    embeddings = load_embeddings(settings.embedding_model, settings.embedding_dtype)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    return KnowledgeBase(
        settings.data_dir, embeddings, chunker, embedding_model_name(settings.embedding_model)
    )


def open_sources(settings: Settings, specs: list[str] | None = None) -> list[Source]:
    """Sources for the given specs, or for the configured ones."""
    options = SourceOptions(
        max_bytes=int(settings.max_file_mb * 1024 * 1024),
        web_concurrency=settings.web_concurrency,
        web_timeout_s=settings.web_timeout_s,
    )
    return [open_source(spec, options) for spec in (specs or settings.source_specs())]
