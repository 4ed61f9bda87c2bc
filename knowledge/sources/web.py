"""Web pages from a list of URLs or a sitemap.xml, fetched politely and reduced to their main text."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.base import LoadError, SourceItem, SourceOptions, SourceUnavailable
from knowledge.sources.html import extract_html
from knowledge.sources.text import decode_text, title_from_name

_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_GONE = {404, 410}


def url_doc_id(url: str) -> str:
    """A document id for a page: host and path, without scheme, extension or trailing slash."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if "." in last:
        path = path[: len(path) - len(last) + last.rfind(".")]
    return parts.netloc + (path or "")


def parse_sitemap(xml: bytes) -> tuple[list[str], list[str]]:
    """Return (page URLs, nested sitemap URLs) listed in a sitemap or sitemap index."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        msg = f"the sitemap is not valid XML ({error})"
        raise SourceUnavailable(msg) from None
    locations = [el.text.strip() for el in root.iter(f"{_SITEMAP_NS}loc") if el.text]
    if root.tag == f"{_SITEMAP_NS}sitemapindex":
        return [], locations
    return locations, []


def _updated_at(response: httpx.Response):
    header = response.headers.get("last-modified")
    try:
        return parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        return None


def _page_loader(url: str, response: httpx.Response):
    body, content_type = response.content, response.headers.get("content-type", "")
    updated_at = _updated_at(response)

    def parse() -> list[SourceDocument | Skipped]:
        if "html" in content_type or not content_type:
            title, text = extract_html(body)
            return [
                SourceDocument(
                    url_doc_id(url), title or title_from_name(url_doc_id(url)), text, url, updated_at
                )
            ]
        text = decode_text(body)
        name = title_from_name(url_doc_id(url).rsplit("/", 1)[-1])
        return [SourceDocument(url_doc_id(url), name, text, url, updated_at, text_format="text")]

    async def load() -> list[SourceDocument | Skipped]:
        return await asyncio.to_thread(parse)

    return load


class WebSource:
    """Pages at given URLs, or every page a sitemap.xml lists."""

    def __init__(
        self, url: str, options: SourceOptions, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.url = url
        self.options = options
        self.name = url
        self.transport = transport
        self.is_sitemap = urlsplit(url).path.endswith(".xml")

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.options.web_timeout_s,
            follow_redirects=True,
            headers={"User-Agent": self.options.user_agent},
            transport=self.transport,
        )

    async def _sitemap_urls(self, client: httpx.AsyncClient) -> list[str]:
        pending, pages, seen = [self.url], [], set()
        while pending and len(seen) < 50:
            sitemap = pending.pop()
            seen.add(sitemap)
            try:
                response = await client.get(sitemap)
                response.raise_for_status()
            except httpx.HTTPError as error:
                msg = f"could not fetch the sitemap {sitemap}: {_describe(error)}"
                raise SourceUnavailable(msg) from None
            found, nested = parse_sitemap(response.content)
            pages.extend(found)
            pending.extend(n for n in nested if n not in seen)
        return list(dict.fromkeys(pages))

    async def _fetch(self, client, url: str, limit: asyncio.Semaphore) -> SourceItem | Skipped:
        async with limit:
            try:
                response = await client.get(url)
            except httpx.HTTPError as error:
                return Skipped(url, f"could not fetch: {_describe(error)}")
        if response.status_code in _GONE:
            return Skipped(url, f"HTTP {response.status_code}: the page is gone", keep_previous=False)
        if response.status_code >= 400:
            return Skipped(url, f"HTTP {response.status_code} from the server; will retry at the next sync")
        if len(response.content) > self.options.max_bytes:
            return Skipped(url, "page is over the size limit (HELPDESK_MAX_FILE_MB)")
        if not response.content.strip():
            return Skipped(url, "empty page")
        return SourceItem(url, content_hash(response.content), _page_loader(url, response))

    async def scan(self) -> AsyncIterator[SourceItem | Skipped]:
        """Fetch every page with bounded concurrency and yield them as they arrive."""
        async with self._client() as client:
            urls = await self._sitemap_urls(client) if self.is_sitemap else [self.url]
            limit = asyncio.Semaphore(self.options.web_concurrency)
            tasks = [asyncio.create_task(self._fetch(client, url, limit)) for url in urls]
            try:
                for finished in asyncio.as_completed(tasks):
                    yield await finished
            finally:
                for task in tasks:
                    task.cancel()


def _describe(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out (HELPDESK_WEB_TIMEOUT_S)"
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


__all__ = ["LoadError", "WebSource", "parse_sitemap", "url_doc_id"]
