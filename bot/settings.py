"""The one Settings object, read from the environment and .env at the edge and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SAMPLE_KNOWLEDGE_BASE = Path(__file__).resolve().parent.parent / "examples" / "acme-kb"


class Settings(BaseSettings):
    """Every setting of the helpdesk bot; environment variables are HELPDESK_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="HELPDESK_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".helpdesk"), description="Where the index, logs and feedback live.")
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated folders, files, page URLs or sitemap.xml URLs; empty = the sample KB.",
    )
    max_file_mb: float = Field(20.0, gt=0, description="Files and pages larger than this are skipped.")
    chunk_size: int = Field(1000, ge=200, description="Maximum characters per passage.")
    chunk_overlap: int = Field(150, ge=0, description="Characters shared by neighbouring passages.")
    embedding_model: str | None = Field(
        None, description="Local sentence-transformers folder; empty = packaged."
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    keyword_weight: float = Field(
        0.1, ge=0, description="Weight of normalised BM25 added to cosine similarity."
    )
    top_k: int = Field(5, ge=1, le=50)
    web_concurrency: int = Field(4, ge=1, le=32)
    web_timeout_s: float = Field(15.0, gt=0)
    sync_cron: str | None = Field(None, description="Cron expression for scheduled syncs, e.g. */30 * * * *.")
    log_level: str = "INFO"

    @field_validator("sources", mode="before")
    @classmethod
    def _split_sources(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sync_cron", "embedding_model", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    def source_specs(self) -> list[str]:
        """The configured sources, or the bundled sample knowledge base when none are set."""
        if self.sources:
            return list(self.sources)
        if SAMPLE_KNOWLEDGE_BASE.is_dir():
            return [str(SAMPLE_KNOWLEDGE_BASE)]
        msg = "No sources configured: set HELPDESK_SOURCES or pass folders/URLs to `helpdesk sync`"
        raise ValueError(msg)
