"""Where documents come from: folders and files, web pages and sitemaps, FAQ exports."""

from __future__ import annotations

from pathlib import Path

from knowledge.sources.base import LoadError, Source, SourceItem, SourceOptions, SourceUnavailable
from knowledge.sources.files import FileSource
from knowledge.sources.web import WebSource


def open_source(spec: str, options: SourceOptions) -> Source:
    """Make a source from a spec: a folder or file path, a page URL, or a sitemap.xml URL."""
    if spec.startswith(("http://", "https://")):
        return WebSource(spec, options)
    return FileSource(Path(spec).expanduser(), options)


__all__ = [
    "FileSource",
    "LoadError",
    "Source",
    "SourceItem",
    "SourceOptions",
    "SourceUnavailable",
    "WebSource",
    "open_source",
]
