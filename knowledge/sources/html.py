"""Main-text extraction from HTML pages (navigation, footers and scripts dropped) with trafilatura."""

from __future__ import annotations

import trafilatura

from knowledge.sources.base import LoadError


def extract_html(raw: bytes | str) -> tuple[str | None, str]:
    """Return (title, main text as Markdown) of an HTML page, or raise LoadError if it has none."""
    text = trafilatura.extract(
        raw,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_comments=False,
        favor_recall=True,
    )
    if not text or not text.strip():
        msg = "no readable text found in the HTML page"
        raise LoadError(msg)
    metadata = trafilatura.extract_metadata(raw)
    title = metadata.title.strip() if metadata and metadata.title else None
    return title, text
