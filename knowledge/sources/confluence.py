"""Confluence Cloud: the current pages of a space, placed under their ancestor pages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import httpx

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.api import ApiError, JsonApi, basic_auth, parse_time
from knowledge.sources.base import SourceItem, SourceOptions, SourceUnavailable
from knowledge.sources.html import html_body_to_markdown
from knowledge.sources.storage_format import storage_to_html

CREDENTIAL_SETTINGS = "HELPDESK_CONFLUENCE_EMAIL and HELPDESK_CONFLUENCE_API_TOKEN"
# The largest page of the v2 pages listing.
PAGE_SIZE = 250


def _next_page(page: dict) -> tuple[str, None, None] | None:
    link = page.get("_links", {}).get("next")
    return (link, None, None) if link else None


def _storage_markdown(storage: str, title: str) -> str:
    return html_body_to_markdown(storage_to_html(storage), title)


class ConfluenceSource:
    """The current pages of one Confluence space: `confluence://SITE/SPACEKEY` (one spec per space)."""

    def __init__(
        self, spec: str, options: SourceOptions, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        site, _, space_key = spec.removeprefix("confluence://").strip("/").partition("/")
        if not site or not space_key or "/" in space_key:
            msg = f"{spec!r} is not a Confluence source: write confluence://SITE/SPACEKEY, e.g. confluence://acme.atlassian.net/HELP"
            raise ValueError(msg)
        account = options.account("confluence")
        auth = basic_auth(account, CREDENTIAL_SETTINGS, "for a space open to anonymous users")
        self.name, self.options = spec, options
        self.site, self.space_key = site, space_key
        base_url = account.url or f"https://{site}"
        self._api = partial(JsonApi, "Confluence", base_url, options, CREDENTIAL_SETTINGS, auth=auth)
        self._transport = transport

    async def _space_id(self, api: JsonApi) -> str:
        found = await api.request("GET", "/wiki/api/v2/spaces", params={"keys": self.space_key})
        spaces = [s for s in found.get("results", []) if s.get("key") == self.space_key]
        if not spaces:
            msg = (
                f"no space {self.space_key} on {self.site} that the account can see: check the space key in "
                f"the spec and that the HELPDESK_CONFLUENCE_EMAIL account may view the space"
            )
            raise SourceUnavailable(msg)
        return str(spaces[0]["id"])

    async def _pages(self, api: JsonApi) -> tuple[list[dict], str]:
        space_id = await self._space_id(api)
        params = {"status": "current", "body-format": "storage", "limit": PAGE_SIZE}
        pages, web_base = [], api.base_url + "/wiki"
        async for listing in api.pages(
            "GET", f"/wiki/api/v2/spaces/{space_id}/pages", _next_page, params=params
        ):
            pages.extend(listing.get("results", []))
            web_base = listing.get("_links", {}).get("base") or web_base
        return pages, web_base

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """One listing of the space's current pages with their bodies; each page is an item."""
        async with self._api(transport=self._transport) as api:
            try:
                pages, web_base = await self._pages(api)
            except ApiError as error:
                msg = f"could not list the pages of {self.space_key}: {error} (kept the indexed pages)"
                raise SourceUnavailable(msg) from None
        by_id = {str(page.get("id")): page for page in pages}
        for page in pages:
            yield self._item(page, _ancestors(page, by_id), web_base)

    def _item(self, page: dict, place: list[str], web_base: str) -> SourceItem | Skipped:
        key, title = str(page.get("id", "")), page.get("title") or ""
        webui = page.get("_links", {}).get("webui") or ""
        if not key or not title or not webui:
            return Skipped(f"page {key or '?'}", "the page has no id, title or web link")
        link = web_base.rstrip("/") + webui
        storage = page.get("body", {}).get("storage", {}).get("value") or ""
        if len(storage.encode()) > self.options.max_bytes:
            return Skipped(link, "page is over the size limit (HELPDESK_MAX_FILE_MB)")
        version = page.get("version", {})
        fingerprint = content_hash(
            key, str(version.get("number", "")), version.get("createdAt") or "", title, link, *place
        )

        async def load() -> list[SourceDocument | Skipped]:
            text = await asyncio.to_thread(_storage_markdown, storage, title)
            updated_at = parse_time(version.get("createdAt"))
            return [SourceDocument(f"pages/{key}", title, text, link, updated_at, headings=tuple(place))]

        return SourceItem(key, fingerprint, load)


def _ancestors(page: dict, by_id: dict[str, dict]) -> list[str]:
    """Titles of the pages above a page, the top one first (other parents, such as folders, are passed over)."""
    titles, seen = [], {str(page.get("id"))}
    parent = by_id.get(str(page.get("parentId")))
    while parent is not None and str(parent.get("id")) not in seen:
        seen.add(str(parent.get("id")))
        titles.append(parent.get("title") or "")
        parent = by_id.get(str(parent.get("parentId")))
    return [title for title in reversed(titles) if title]
