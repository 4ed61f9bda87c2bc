"""The one Settings object, read from the environment and .env at the edge and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.answer.decide import (
    MIN_ANSWER_SCORE,
    MIN_ANSWERABILITY,
    MIN_CONFIDENCE,
    MIN_SCORED_CONFIDENCE,
    MIN_SUPPORT,
)
from knowledge.sources.base import PlatformAccount

SAMPLE_KNOWLEDGE_BASE = Path(__file__).resolve().parent.parent / "examples" / "acme-kb"
# PostgreSQL's memory units, in kB, and the range of maintenance_work_mem it accepts (1 MB to 2 TB).
POSTGRES_MEMORY_UNITS = {"kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}
POSTGRES_MEMORY_RANGE_KB = (1024, 2**31 - 1)


class Settings(BaseSettings):
    """Every setting of the helpdesk bot: HELPDESK_<NAME>, and the platforms' own SLACK_* / DISCORD_* names."""

    model_config = SettingsConfigDict(
        env_prefix="HELPDESK_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(Path(".helpdesk"), description="Where the index, logs and feedback live.")
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL with pgvector, e.g. postgresql://user:password@host/db; set = index versions, "
        "journal, hand-offs, learnt answers and chat state live there (shared by every replica), empty = in "
        "the data directory.",
    )
    database_pool_size: int | None = Field(
        None,
        ge=2,
        le=100,
        description="Connections each bot process keeps open to HELPDESK_DATABASE_URL at most; empty = 5.",
    )
    database_build_memory: str | None = Field(
        None,
        description="Memory PostgreSQL may use to build an index version's HNSW graph during a sync "
        "(maintenance_work_mem of that transaction), e.g. 512MB or 2GB; empty = 1GB.",
    )
    sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated folders, files, page URLs, sitemap.xml URLs, zendesk://SUBDOMAIN, "
        "confluence://SITE/SPACEKEY or notion://ID; empty = the sample KB.",
    )
    max_file_mb: float = Field(20.0, gt=0, description="Files and pages larger than this are skipped.")
    chunk_size: int = Field(1000, ge=200, description="Maximum characters per passage.")
    chunk_overlap: int = Field(150, ge=0, description="Characters shared by neighbouring passages.")
    chunk_tokens: int = Field(
        200,
        ge=0,
        description="Maximum embedding-model tokens per passage, title and headings included "
        "(capped at the model's input limit); 0 = size passages by chunk_size characters.",
    )
    chunk_overlap_tokens: int = Field(30, ge=0, description="Tokens shared by neighbouring passages.")
    embedding_model: str | None = Field(
        None, description="Local sentence-transformers folder; empty = packaged."
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    keyword_weight: float = Field(
        0.05, ge=0, description="Weight of normalised BM25 added to cosine similarity."
    )
    top_k: int = Field(5, ge=1, le=50)
    web_concurrency: int = Field(4, ge=1, le=32)
    web_timeout_s: float = Field(15.0, gt=0, description="Seconds allowed to fetch a whole page or sitemap.")
    zendesk_email: str | None = Field(
        None, description="Zendesk agent's email; empty = a public help center."
    )
    zendesk_api_token: SecretStr | None = None
    zendesk_url: str | None = Field(
        None, description="Zendesk base URL; empty = https://SUBDOMAIN.zendesk.com."
    )
    confluence_email: str | None = Field(None, description="Atlassian account email of the API token.")
    confluence_api_token: SecretStr | None = None
    confluence_url: str | None = Field(None, description="Confluence base URL; empty = https://SITE.")
    notion_token: SecretStr | None = Field(None, description="Secret of the Notion integration.")
    notion_api_url: str = Field("https://api.notion.com", description="Notion API base URL.")
    generator: Literal["local", "extractive", "openai"] = Field(
        "local",
        description="local = the packaged instruct model writes the answer; extractive = quote the retrieved "
        "text (no model, fastest); openai = an OpenAI-compatible endpoint.",
    )
    model_cache_dir: Path | None = Field(
        None, description="Where the packaged answer model is assembled once; empty = <data dir>/models."
    )
    answer_threads: int = Field(0, ge=0, description="CPU threads of the local answer model; 0 = every core.")
    openai_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1"
    )
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = None
    generator_timeout_s: float = Field(60.0, gt=0)
    min_confidence: float = Field(
        MIN_CONFIDENCE,
        ge=0,
        le=1,
        description="Refuse below this retrieval confidence when retrieval alone decides (the extractive "
        "and openai writers).",
    )
    min_scored_confidence: float = Field(
        MIN_SCORED_CONFIDENCE,
        ge=0,
        le=1,
        description="With the local model: refuse below this retrieval confidence; above it the answer "
        "score decides.",
    )
    min_answerability: float = Field(
        MIN_ANSWERABILITY,
        ge=0,
        le=1,
        description="Refuse when the local model judges the passages less likely than this to answer "
        "(an extra floor; the answer score weighs it).",
    )
    min_answer_score: float = Field(
        MIN_ANSWER_SCORE,
        ge=0,
        le=1,
        description="With the local model: refuse when the answer score (how likely the answer holds every "
        "fact asked for, from the retrieval confidence, the answerability and the support) is below this.",
    )
    min_support: float = Field(
        MIN_SUPPORT,
        ge=-1,
        le=1,
        description="Refuse when the writer's support is below this: with the local model, the share of its "
        "sketch's words the excerpts contain; with the extractive writer, the best sentence's similarity to "
        "the question.",
    )
    tone_enabled: bool = Field(
        True, description="Rewrite answers in the brand voice when an adapter is present."
    )
    tone_adapter: Path | None = Field(None, description="LoRA adapter folder; empty = the bundled one.")
    tone_timeout_s: float = Field(
        4.0, gt=0, description="Post the unrewritten answer if rewriting takes longer."
    )
    tone_backend: Literal["auto", "llama.cpp", "transformers"] = Field(
        "auto", description="Engine of the tone model; auto = llama.cpp when installed, else transformers."
    )
    tone_threads: int = Field(0, ge=0, description="CPU threads for a rewrite; 0 = every core.")
    tone_beams: int = Field(
        1,
        ge=1,
        le=8,
        description="Candidate replies the tone model weighs at each step; 1 = greedy (fastest). Measure before raising.",
    )
    tone_copy_bias: float = Field(
        1.0,
        ge=0,
        le=20,
        description="How hard greedy decoding is pushed to finish a passage of the answer it has begun to copy; 0 = plain greedy.",
    )
    http_host: str = "0.0.0.0"
    http_port: int = Field(3000, ge=1, le=65535)
    slack_bot_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL"))
    slack_allowed_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Channel ids the bot answers in; empty = everywhere it is invited."
    )
    discord_bot_token: SecretStr | None = Field(None, validation_alias=AliasChoices("DISCORD_BOT_TOKEN"))
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("DISCORD_GUILD_IDS")
    )
    discord_api_url: str = Field(
        "https://discord.com/api/v10", validation_alias=AliasChoices("DISCORD_API_URL")
    )
    discord_gateway_url: str = Field(
        "wss://gateway.discord.gg/", validation_alias=AliasChoices("DISCORD_GATEWAY_URL")
    )
    discord_answer_threads: bool = Field(False, description="Open a thread per answer for follow-ups.")
    slack_escalation_channel: str | None = Field(
        None, description='Channel id where "Ask a human" posts; empty = no such button on Slack.'
    )
    slack_escalation_mention: str | None = Field(
        None, description="Who an escalation pings, in Slack markup: <!subteam^ID> or <@U123>."
    )
    discord_escalation_channel: int | None = Field(
        None, description='Channel id where "Ask a human" posts; empty = no such button on Discord.'
    )
    discord_escalation_role: int | None = Field(None, description="Role id an escalation pings.")
    slack_trusted_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Slack user ids (U…) and user group ids (S…) who may save their replies as answers.",
    )
    discord_trusted_role: int | None = Field(
        None, description="Role id whose members may save their replies as answers; empty = nobody."
    )
    admin_token: SecretStr | None = Field(
        None, description="Serve the admin page at /admin to whoever presents this token; empty = off."
    )
    sync_cron: str | None = Field(None, description="Cron expression for scheduled syncs, e.g. */30 * * * *.")
    log_level: str = "INFO"
    # The process's connection pool to HELPDESK_DATABASE_URL (bot.runtime.open_database), one per Settings.
    _database: object | None = PrivateAttr(None)

    @field_validator(
        "sources", "slack_allowed_channels", "discord_guild_ids", "slack_trusted_users", mode="before"
    )
    @classmethod
    def _split_sources(cls, value):
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "sync_cron",
        "database_url",
        "database_pool_size",
        "database_build_memory",
        "model_cache_dir",
        "embedding_model",
        "openai_base_url",
        "openai_api_key",
        "tone_adapter",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "discord_bot_token",
        "zendesk_email",
        "zendesk_api_token",
        "zendesk_url",
        "confluence_email",
        "confluence_api_token",
        "confluence_url",
        "notion_token",
        "slack_escalation_channel",
        "slack_escalation_mention",
        "discord_escalation_channel",
        "discord_escalation_role",
        "discord_trusted_role",
        "admin_token",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_build_memory")
    @classmethod
    def _postgres_memory(cls, value: str | None) -> str | None:
        """An amount of memory as PostgreSQL writes it (units kB, MB, GB, TB), within what it accepts."""
        if value is None:
            return None
        match = re.fullmatch(r"\s*(\d+)\s*([kmgt]b)\s*", value, re.IGNORECASE)
        unit = next((u for u in POSTGRES_MEMORY_UNITS if match and u.lower() == match[2].lower()), None)
        low, high = POSTGRES_MEMORY_RANGE_KB
        if unit is None or not low <= int(match[1]) * POSTGRES_MEMORY_UNITS[unit] <= high:
            msg = (
                f"HELPDESK_DATABASE_BUILD_MEMORY={value!r} is not an amount of memory PostgreSQL accepts: "
                "write a number and a unit (kB, MB, GB or TB) between 1MB and 2TB, e.g. 512MB or 2GB"
            )
            raise ValueError(msg)
        return f"{int(match[1])}{unit}"

    def source_specs(self) -> list[str]:
        """The configured sources, or the bundled sample knowledge base when none are set."""
        if self.sources:
            return list(self.sources)
        if SAMPLE_KNOWLEDGE_BASE.is_dir():
            return [str(SAMPLE_KNOWLEDGE_BASE)]
        msg = "No sources configured: set HELPDESK_SOURCES or pass folders/URLs to `helpdesk sync`"
        raise ValueError(msg)

    def platform_accounts(self) -> dict[str, PlatformAccount]:
        """The knowledge-base platforms' base URLs and credentials, by platform name."""

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value else None

        return {
            "zendesk": PlatformAccount(self.zendesk_url, self.zendesk_email, secret(self.zendesk_api_token)),
            "confluence": PlatformAccount(
                self.confluence_url, self.confluence_email, secret(self.confluence_api_token)
            ),
            "notion": PlatformAccount(self.notion_api_url, None, secret(self.notion_token)),
        }
