"""What every source yields: items to load, each with a fingerprint of its raw content."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
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
class PlatformAccount:
    """How to reach a knowledge-base platform: its base URL (empty = the platform's own), user and token."""

    url: str | None = None
    user: str | None = None
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SourceOptions:
    """Limits and manners shared by all sources, and the accounts of the platforms, by platform name."""

    max_bytes: int = 20 * 1024 * 1024
    web_concurrency: int = 4
    web_timeout_s: float = 15.0
    user_agent: str = "helpdesk-bot (+knowledge-base sync)"
    accounts: Mapping[str, PlatformAccount] = field(default_factory=dict, repr=False)

    def account(self, platform: str) -> PlatformAccount:
        """The account configured for a platform, or an anonymous one."""
        return self.accounts.get(platform) or PlatformAccount()


_MB = 1024 * 1024


def _size(n: int | float) -> str:
    return f"{n / _MB:.1f} MB" if n >= _MB / 10 else f"{n / 1024:.1f} KB"


def over_limit(size: int, limit: int, *, at_least: bool = False) -> str:
    """How far a size is over the limit, in bytes too, so that one byte over still shows.

    e.g. "20.0 MB (20,971,521 bytes), over the 20.0 MB limit (20,971,520 bytes; HELPDESK_MAX_FILE_MB)".
    """
    prefix = "at least " if at_least else ""
    return (
        f"{prefix}{_size(size)} ({size:,} bytes), "
        f"over the {_size(limit)} limit ({limit:,} bytes; HELPDESK_MAX_FILE_MB)"
    )


class Source(Protocol):
    """A place documents come from: a folder, a file, a web page, a sitemap or a knowledge-base platform."""

    name: str

    def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """Yield every item of the source, or a Skipped for each that cannot be read."""
        ...
