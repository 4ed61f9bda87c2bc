"""Notion: the pages of a database, or a page and its child pages, read block by block into Markdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import httpx

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.api import ApiError, AuthenticationFailed, JsonApi, NextPage, NotFound, parse_time
from knowledge.sources.base import LoadError, SourceItem, SourceOptions, SourceUnavailable
from knowledge.sources.notion_blocks import CONTAINERS, blocks_to_markdown, rich_text

CREDENTIAL_SETTINGS = "HELPDESK_NOTION_TOKEN"
# The API version this source speaks: databases queried at /v1/databases/{id}/query.
NOTION_VERSION = "2022-06-28"
# The largest page of a Notion listing.
PAGE_SIZE = 100
# Levels of nested blocks fetched below a page's own; each level costs a request per block with children,
# and Notion's editor rarely nests deeper than lists in toggles in columns.
MAX_BLOCK_DEPTH = 8
_PAGE_LINKS = {"child_page", "child_database"}


def page_title(page: dict) -> str:
    """The title property of a page (its name in the sidebar)."""
    for value in (page.get("properties") or {}).values():
        if value.get("type") == "title":
            return rich_text(value.get("title", [])).strip()
    return ""


def _cursor(path: str, *, in_body: bool) -> NextPage:
    """The next request of a Notion listing: the same one from `next_cursor`, while `has_more`."""

    def following(page: dict):
        if not page.get("has_more") or not page.get("next_cursor"):
            return None
        request = {"page_size": PAGE_SIZE, "start_cursor": page["next_cursor"]}
        return (path, None, request) if in_body else (path, request, None)

    return following


def _normal_id(raw: str) -> str:
    compact = raw.replace("-", "").lower()
    if len(compact) != 32 or any(c not in "0123456789abcdef" for c in compact):
        return ""
    return f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}"


class NotionSource:
    """A Notion database's pages, or a page with its child pages: `notion://DATABASE_OR_PAGE_ID`."""

    def __init__(
        self, spec: str, options: SourceOptions, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.root_id = _normal_id(spec.removeprefix("notion://").strip("/").rsplit("-", 1)[-1])
        self.root_id = self.root_id or _normal_id(spec.removeprefix("notion://").strip("/"))
        if not self.root_id:
            msg = f"{spec!r} is not a Notion source: write notion://ID with the 32-character id of a page or database"
            raise ValueError(msg)
        account = options.account("notion")
        if not account.token:
            msg = f"Set {CREDENTIAL_SETTINGS} to the secret of a Notion integration to sync {spec}"
            raise ValueError(msg)
        self.name, self.options = spec, options
        headers = {"Authorization": f"Bearer {account.token}", "Notion-Version": NOTION_VERSION}
        base_url = account.url or "https://api.notion.com"
        self._api = partial(JsonApi, "Notion", base_url, options, CREDENTIAL_SETTINGS, headers=headers)
        self._transport = transport

    async def _children(self, api: JsonApi, block_id: str) -> AsyncIterator[dict]:
        path = f"/v1/blocks/{block_id}/children"
        params = {"page_size": PAGE_SIZE}
        async for listing in api.pages("GET", path, _cursor(path, in_body=False), params=params):
            for block in listing.get("results", []):
                yield block

    async def _database_pages(self, api: JsonApi, database: dict) -> list[tuple[dict, list[str]]]:
        place = [title] if (title := rich_text(database.get("title", [])).strip()) else []
        path = f"/v1/databases/{self.root_id}/query"
        body = {"page_size": PAGE_SIZE}
        return [
            (page, place)
            async for listing in api.pages("POST", path, _cursor(path, in_body=True), json=body)
            for page in listing.get("results", [])
        ]

    async def _child_page_ids(self, api: JsonApi, block_id: str) -> list[str]:
        """Child pages placed on a page, directly or inside columns and synced blocks."""
        found = []
        async for block in self._children(api, block_id):
            if block.get("type") == "child_page":
                found.append(block["id"])
            elif block.get("type") in CONTAINERS and block.get("has_children"):
                found.extend(await self._child_page_ids(api, block["id"]))
        return found

    async def _child_pages(
        self, api: JsonApi, page: dict, place: list[str]
    ) -> list[tuple[dict, list[str]] | Skipped]:
        below = [*place, page_title(page)]
        ids = await self._child_page_ids(api, page["id"])
        answers = await asyncio.gather(
            *(api.request("GET", f"/v1/pages/{i}") for i in ids), return_exceptions=True
        )
        entries: list[tuple[dict, list[str]] | Skipped] = []
        for child_id, answer in zip(ids, answers, strict=True):
            if isinstance(answer, NotFound):
                continue  # deleted since the parent was listed
            if isinstance(answer, ApiError) and not isinstance(answer, AuthenticationFailed):
                entries.append(Skipped(child_id, f"{answer} (its child pages were not read either)"))
            elif isinstance(answer, BaseException):
                raise answer
            else:
                entries.append((answer, below))
        return entries

    async def _page_tree(self, api: JsonApi, root: dict) -> list[tuple[dict, list[str]] | Skipped]:
        found: list[tuple[dict, list[str]] | Skipped] = [(root, [])]
        level: list[tuple[dict, list[str]] | Skipped] = [(root, [])]
        while level:
            below = await asyncio.gather(
                *(self._child_pages(api, *entry) for entry in level if not isinstance(entry, Skipped))
            )
            level = [entry for entries in below for entry in entries]
            found.extend(level)
        return found

    async def _listing(self, api: JsonApi) -> list[tuple[dict, list[str]] | Skipped]:
        try:
            database = await api.request("GET", f"/v1/databases/{self.root_id}")
        except ApiError as error:
            if not isinstance(error, NotFound) and error.status != 400:  # 400: the id is a page's
                raise
        else:
            return await self._database_pages(api, database)
        try:
            root = await api.request("GET", f"/v1/pages/{self.root_id}")
        except NotFound:
            msg = (
                f"Notion has no page or database {self.root_id} shared with the integration: open it in "
                f"Notion, choose ••• → Connections and add the integration of HELPDESK_NOTION_TOKEN"
            )
            raise SourceUnavailable(msg) from None
        return await self._page_tree(api, root)

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """One listing of the pages; a page's blocks are fetched only when it changed."""
        async with self._api(transport=self._transport) as api:
            try:
                entries = await self._listing(api)
            except ApiError as error:
                msg = f"could not list the pages of {self.name}: {error} (kept the indexed pages)"
                raise SourceUnavailable(msg) from None
            for entry in entries:
                if isinstance(entry, Skipped):
                    yield entry
                elif not entry[0].get("archived") and not entry[0].get("in_trash"):
                    yield self._item(api, *entry)

    async def _block_tree(self, api: JsonApi, block_id: str, depth: int = 0) -> list[dict]:
        blocks = [block async for block in self._children(api, block_id)]
        nested = [b for b in blocks if b.get("has_children") and b.get("type") not in _PAGE_LINKS]
        if depth < MAX_BLOCK_DEPTH:
            trees = await asyncio.gather(*(self._block_tree(api, b["id"], depth + 1) for b in nested))
            for block, tree in zip(nested, trees, strict=True):
                block["children"] = tree
        return blocks

    def _item(self, api: JsonApi, page: dict, place: list[str]) -> SourceItem | Skipped:
        key, title, link = page.get("id", ""), page_title(page), page.get("url") or ""
        if not key or not link:
            return Skipped(f"page {key or '?'}", "the page has no id or url")
        edited = page.get("last_edited_time") or ""
        fingerprint = content_hash(key, edited, title, link, *place)

        async def load() -> list[SourceDocument | Skipped]:
            try:
                blocks = await self._block_tree(api, key)
            except NotFound as error:
                return [Skipped(link, str(error), keep_previous=False)]
            except ApiError as error:
                raise LoadError(str(error)) from None
            text = await asyncio.to_thread(blocks_to_markdown, blocks)
            if not text.strip():
                msg = "the page has no text"
                raise LoadError(msg)
            document = SourceDocument(
                f"pages/{key}", title or "Untitled", text, link, parse_time(edited), headings=tuple(place)
            )
            return [document]

        return SourceItem(key, fingerprint, load)
