"""Zendesk Help Center: the published articles of one locale, placed under their category and section."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from urllib.parse import parse_qs, urlsplit

import httpx

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.api import ApiError, JsonApi, basic_auth, parse_time
from knowledge.sources.base import SourceItem, SourceOptions, SourceUnavailable
from knowledge.sources.html import html_body_to_markdown

CREDENTIAL_SETTINGS = "HELPDESK_ZENDESK_EMAIL and HELPDESK_ZENDESK_API_TOKEN"
# Cursor pagination's largest page for Help Center lists.
PAGE_SIZE = 100


def _next_page(page: dict) -> tuple[str, None, None] | None:
    """Cursor pagination's next link while there is more; offset pagination's next_page otherwise."""
    if page.get("meta", {}).get("has_more") and page.get("links", {}).get("next"):
        return page["links"]["next"], None, None
    if page.get("next_page"):
        return page["next_page"], None, None
    return None


class ZendeskSource:
    """The published articles of a Zendesk help center: `zendesk://SUBDOMAIN[?locale=en-us]`."""

    def __init__(
        self, spec: str, options: SourceOptions, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        parts = urlsplit(spec)
        self.subdomain = parts.netloc
        self.locale = parse_qs(parts.query).get("locale", [""])[0]
        if not self.subdomain or parts.path.strip("/"):
            msg = f"{spec!r} is not a Zendesk source: write zendesk://SUBDOMAIN or zendesk://SUBDOMAIN?locale=en-us"
            raise ValueError(msg)
        account = options.account("zendesk")
        auth = basic_auth(account, CREDENTIAL_SETTINGS, "for a public help center", user_suffix="/token")
        base_url = account.url or f"https://{self.subdomain}.zendesk.com"
        self.name, self.options = spec, options
        self._api = partial(JsonApi, "Zendesk", base_url, options, CREDENTIAL_SETTINGS, auth=auth)
        self._transport = transport

    async def _list(self, api: JsonApi, kind: str) -> list[dict]:
        locale = f"/{self.locale}" if self.locale else ""
        path = f"/api/v2/help_center{locale}/{kind}.json"
        return [
            record
            async for page in api.pages("GET", path, _next_page, params={"page[size]": PAGE_SIZE})
            for record in page.get(kind, [])
        ]

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """One listing of categories, sections and articles; each published article is an item."""
        async with self._api(transport=self._transport) as api:
            try:
                categories, sections, articles = await asyncio.gather(
                    self._list(api, "categories"), self._list(api, "sections"), self._list(api, "articles")
                )
            except ApiError as error:
                msg = f"could not list the articles of {self.subdomain}: {error} (kept the indexed articles)"
                raise SourceUnavailable(msg) from None
        places = _places(categories, sections)
        for article in articles:
            if article.get("draft"):
                continue  # unpublished: not in the index, and removed from it if it was
            yield self._item(article, places.get(article.get("section_id"), []))

    def _item(self, article: dict, place: list[str]) -> SourceItem | Skipped:
        key = str(article.get("id", ""))
        title, body, link = article.get("title") or "", article.get("body") or "", article.get("html_url")
        if not key or not title or not link:
            return Skipped(f"article {key or '?'}", "the article has no id, title or html_url")
        if len(body.encode()) > self.options.max_bytes:
            return Skipped(link, "article is over the size limit (HELPDESK_MAX_FILE_MB)")
        updated_at = article.get("updated_at") or ""
        fingerprint = content_hash(key, updated_at, title, link, *place)

        async def load() -> list[SourceDocument | Skipped]:
            text = await asyncio.to_thread(html_body_to_markdown, body, title)
            document = SourceDocument(
                f"articles/{key}", title, text, link, parse_time(updated_at), headings=tuple(place)
            )
            return [document]

        return SourceItem(key, fingerprint, load)


def _places(categories: list[dict], sections: list[dict]) -> dict[int, list[str]]:
    """Each section's place: its category, its parent sections, then itself."""
    category_names = {c.get("id"): c.get("name") or "" for c in categories}
    by_id = {s.get("id"): s for s in sections}
    places: dict[int, list[str]] = {}
    for section_id, section in by_id.items():
        chain, current, seen = [], section, set()
        while current is not None and current.get("id") not in seen:
            seen.add(current.get("id"))
            chain.append(current.get("name") or "")
            parent = current.get("parent_section_id")
            category = current.get("category_id")
            current = by_id.get(parent) if parent else None
        chain.append(category_names.get(category, ""))
        places[section_id] = [name for name in reversed(chain) if name]
    return places
