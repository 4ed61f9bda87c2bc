"""Main-text extraction from HTML pages (navigation, footers and scripts dropped) with trafilatura."""

from __future__ import annotations

import lxml.html
import trafilatura

from knowledge.sources.base import LoadError

_BOILERPLATE = ("nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template")


def _without_boilerplate(raw: bytes | str) -> str | bytes:
    """The page with navigation, header, footer and sidebars removed, so they never reach the index."""
    try:
        tree = lxml.html.fromstring(raw)
    except (ValueError, lxml.etree.ParserError):
        return raw
    for element in tree.xpath("|".join(f"//{tag}" for tag in _BOILERPLATE)):
        element.drop_tree()
    return lxml.html.tostring(tree, encoding="unicode")


def extract_html(raw: bytes | str) -> tuple[str | None, str]:
    """Return (title, main text as Markdown) of an HTML page, or raise LoadError if it has none."""
    metadata = trafilatura.extract_metadata(raw)
    text = trafilatura.extract(
        _without_boilerplate(raw),
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
    title = metadata.title.strip() if metadata and metadata.title else None
    return title, text
