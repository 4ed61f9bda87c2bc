"""Web pages from a list of URLs or a sitemap.xml, fetched politely and reduced to their main text."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from knowledge.documents import Skipped, SourceDocument, content_hash
from knowledge.sources.base import LoadError, SourceItem, SourceOptions, SourceUnavailable, over_limit
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


def _updated_at(response: httpx.Response) -> datetime | None:
    header = response.headers.get("last-modified")
    try:
        return parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        return None


def _page_loader(url: str, page: Page):
    def parse() -> list[SourceDocument | Skipped]:
        if "html" in page.content_type or not page.content_type:
            title, text = extract_html(page.body)
            return [
                SourceDocument(
                    url_doc_id(url), title or title_from_name(url_doc_id(url)), text, url, page.updated_at
                )
            ]
        text = decode_text(page.body)
        name = title_from_name(url_doc_id(url).rsplit("/", 1)[-1])
        return [SourceDocument(url_doc_id(url), name, text, url, page.updated_at, text_format="text")]

    async def load() -> list[SourceDocument | Skipped]:
        return await asyncio.to_thread(parse)

    return load


@dataclass(frozen=True)
class Page:
    """A fetched page: its status, body (read only up to the size limit), type and date."""

    status: int
    body: bytes
    content_type: str
    updated_at: datetime | None


class PageTooLarge(Exception):
    """A page over the size limit: announced by its Content-Length, or found so while it was read."""


async def download(client: httpx.AsyncClient, url: str, max_bytes: int, timeout_s: float) -> Page:
    """GET a page within `timeout_s` for the whole exchange, reading at most `max_bytes` of its body.

    A Content-Length over the limit is refused before any of the body is read; a body without one is read
    as it streams and dropped as soon as it passes the limit. The body of an error answer is not read.
    Raises httpx.TimeoutException when the whole fetch takes longer than `timeout_s`, however the server
    trickles its bytes, and PageTooLarge.
    """
    try:
        async with asyncio.timeout(timeout_s), client.stream("GET", url) as response:
            updated_at = _updated_at(response)
            content_type = response.headers.get("content-type", "")
            if response.status_code >= 400:
                return Page(response.status_code, b"", content_type, updated_at)
            announced = response.headers.get("content-length", "")
            if announced.isdigit() and int(announced) > max_bytes:
                msg = f"page is {over_limit(int(announced), max_bytes)}, as its Content-Length says"
                raise PageTooLarge(msg)
            body = bytearray()
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > max_bytes:
                    msg = f"page is {over_limit(len(body), max_bytes, at_least=True)}; stopped reading"
                    raise PageTooLarge(msg)
            return Page(response.status_code, bytes(body), content_type, updated_at)
    except TimeoutError:
        msg = f"the whole fetch took longer than {timeout_s:g} s"
        raise httpx.TimeoutException(msg) from None


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
                page = await self._download(client, sitemap)
            except (httpx.HTTPError, PageTooLarge) as error:
                msg = f"could not fetch the sitemap {sitemap}: {_describe(error)}"
                raise SourceUnavailable(msg) from None
            if page.status >= 400:
                msg = f"could not fetch the sitemap {sitemap}: HTTP {page.status}"
                raise SourceUnavailable(msg)
            found, nested = parse_sitemap(page.body)
            pages.extend(found)
            pending.extend(n for n in nested if n not in seen)
        return list(dict.fromkeys(pages))

    async def _download(self, client: httpx.AsyncClient, url: str) -> Page:
        return await download(client, url, self.options.max_bytes, self.options.web_timeout_s)

    async def _fetch(self, client, url: str, limit: asyncio.Semaphore) -> SourceItem | Skipped:
        async with limit:
            try:
                page = await self._download(client, url)
            except PageTooLarge as error:
                return Skipped(url, str(error))
            except httpx.HTTPError as error:
                return Skipped(url, f"could not fetch: {_describe(error)}")
        if page.status in _GONE:
            return Skipped(url, f"HTTP {page.status}: the page is gone", keep_previous=False)
        if page.status >= 400:
            return Skipped(url, f"HTTP {page.status} from the server; will retry at the next sync")
        if not page.body.strip():
            return Skipped(url, "empty page")
        return SourceItem(url, content_hash(page.body), _page_loader(url, page))

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


def _describe(error: Exception) -> str:
    if isinstance(error, PageTooLarge):
        return str(error)
    if isinstance(error, httpx.TimeoutException):
        detail = f": {error}" if str(error).startswith("the whole fetch") else ""
        return f"timed out{detail} (HELPDESK_WEB_TIMEOUT_S)"
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


__all__ = ["LoadError", "WebSource", "parse_sitemap", "url_doc_id"]
