"""What every source yields: items to load, each with a fingerprint of its raw content."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from knowledge.documents import Skipped, SourceDocument


class LoadError(Exception):
    """An input that cannot be indexed; the message says why and what to do."""


class SourceUnavailable(Exception):
    """A whole source could not be read (missing folder, unreachable sitemap)."""


@dataclass(frozen=True)
class SourceItem:
    """One file or page: its key, a hash of its raw bytes, and how to turn it into documents."""

    key: str
    fingerprint: str
    load: Callable[[], Awaitable[list[SourceDocument | Skipped]]]


@dataclass(frozen=True)
class SourceOptions:
    """Limits and manners shared by all sources."""

    max_bytes: int = 20 * 1024 * 1024
    web_concurrency: int = 4
    web_timeout_s: float = 15.0
    user_agent: str = "helpdesk-bot (+knowledge-base sync)"


class Source(Protocol):
    """A place documents come from: a folder, a file, a web page or a sitemap."""

    name: str

    def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """Yield every item of the source, or a Skipped for each that cannot be read."""
        ...
