"""Where documents come from: folders and files, web pages and sitemaps, FAQ exports, knowledge-base platforms."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from knowledge.sources.base import (
    LoadError,
    PlatformAccount,
    Source,
    SourceItem,
    SourceOptions,
    SourceUnavailable,
)
from knowledge.sources.confluence import ConfluenceSource
from knowledge.sources.files import FileSource
from knowledge.sources.notion import NotionSource
from knowledge.sources.web import WebSource
from knowledge.sources.zendesk import ZendeskSource

# Knowledge-base platforms by the scheme of their spec, e.g. zendesk://acme: one line per platform.
PLATFORM_SOURCES: dict[str, Callable[[str, SourceOptions], Source]] = {
    "zendesk": ZendeskSource,
    "confluence": ConfluenceSource,
    "notion": NotionSource,
}


def open_source(spec: str, options: SourceOptions) -> Source:
    """Make a source from a spec: a folder or file path, a page URL, a sitemap.xml URL, or a platform's
    SCHEME://… (zendesk://, confluence://, notion://)."""
    scheme = spec.partition("://")[0].lower()
    if scheme in PLATFORM_SOURCES:
        return PLATFORM_SOURCES[scheme](spec, options)
    if spec.startswith(("http://", "https://")):
        return WebSource(spec, options)
    return FileSource(Path(spec).expanduser(), options)


__all__ = [
    "PLATFORM_SOURCES",
    "ConfluenceSource",
    "FileSource",
    "LoadError",
    "NotionSource",
    "PlatformAccount",
    "Source",
    "SourceItem",
    "SourceOptions",
    "SourceUnavailable",
    "WebSource",
    "ZendeskSource",
    "open_source",
]
