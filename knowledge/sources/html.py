"""Main-text extraction from HTML pages (navigation, footers and scripts dropped) with trafilatura."""

from __future__ import annotations

import html

import lxml.html
import trafilatura
from trafilatura.settings import DEFAULT_CONFIG, use_config

from knowledge.sources.base import LoadError

_BOILERPLATE = ("nav", "header", "footer", "aside", "script", "style", "noscript", "form", "template")
# An article body holds no boilerplate, and one sentence is a whole article: trafilatura's minimum sizes
# (250 characters), meant to tell a page's main text from its menus, would drop short answers.
_SHORT_TEXT_ALLOWED = use_config()
_SHORT_TEXT_ALLOWED.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
_SHORT_TEXT_ALLOWED.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")


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
    text = _markdown(_without_boilerplate(raw), "no readable text found in the HTML page")
    title = metadata.title.strip() if metadata and metadata.title else None
    return title, text


def _markdown(page: str | bytes, empty_reason: str, config=DEFAULT_CONFIG) -> str:
    text = trafilatura.extract(
        page,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_links=False,
        include_comments=False,
        favor_recall=True,
        config=config,
    )
    if not text or not text.strip():
        raise LoadError(empty_reason)
    return text


def html_body_to_markdown(body: str, title: str) -> str:
    """The Markdown of an article body from a platform (headings, lists, tables and code kept), or LoadError."""
    page = (
        f"<html><head><title>{html.escape(title)}</title></head><body><article>{body}</article></body></html>"
    )
    return _markdown(page, "the article has no readable text", _SHORT_TEXT_ALLOWED)
