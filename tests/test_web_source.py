"""Web pages and sitemaps fetched from a local HTTP server, including failures and re-syncs."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiohttp import web

from knowledge.sources import SourceOptions, WebSource
from knowledge.sources.web import url_doc_id

PAGE = """<html><head><title>{title}</title></head><body><nav>Home · Docs · Pricing</nav>
<main><article><h1>{title}</h1><p>{body}</p></article></main><footer>© Example Ltd</footer></body></html>"""


class FakeSite:
    """A tiny help center on 127.0.0.1 whose pages a test can change between syncs."""

    def __init__(self):
        self.pages = {
            "/help/refunds.html": ("Refunds", "Refunds are issued within 14 days of a request to billing."),
            "/help/login": (
                "Signing in",
                "Use your work email address and the password you chose at sign-up.",
            ),
        }
        self.status: dict[str, int] = {"/help/gone": 404, "/help/broken": 500}
        self.slow = {"/help/slow"}
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if request.path == "/sitemap.xml" and request.path not in self.status:
            urls = [*self.pages, *self.status, *self.slow]
            locs = "".join(f"<url><loc>{self.base}{u}</loc></url>" for u in urls)
            xml = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
            return web.Response(text=xml, content_type="application/xml")
        if request.path in self.slow:
            await asyncio.sleep(1.5)
        if request.path in self.status:
            return web.Response(status=self.status[request.path], text="nope")
        if request.path in self.pages:
            title, body = self.pages[request.path]
            return web.Response(
                text=PAGE.format(title=title, body=body),
                content_type="text/html",
                headers={"Last-Modified": "Tue, 03 Nov 2026 10:00:00 GMT"},
            )
        return web.Response(status=404)


@contextlib.asynccontextmanager
async def serving(fake):
    """An HTTP server on 127.0.0.1 answering every GET with `fake.handle`; sets `fake.base` to its URL."""
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    port = server._server.sockets[0].getsockname()[1]
    fake.base = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def site():
    async with serving(FakeSite()) as fake:
        yield fake


def test_url_doc_ids():
    assert url_doc_id("https://help.example/billing/refunds.html") == "help.example/billing/refunds"
    assert url_doc_id("https://help.example/billing/") == "help.example/billing"
    assert url_doc_id("https://help.example") == "help.example"


async def test_sitemap_sync_reports_failures_and_keeps_going(site, make_kb):
    options = SourceOptions(web_timeout_s=0.5, web_concurrency=2)
    kb = make_kb()
    report = await kb.sync([WebSource(f"{site.base}/sitemap.xml", options)])
    assert len(report.added) == 2
    reasons = {s.where.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert "404" in reasons["gone"]
    assert "500" in reasons["broken"]
    assert "timed out" in reasons["slow"]
    hits = await kb.search("refunds billing", k=5, mode="bm25")
    assert hits[0].chunk.doc_id == "127.0.0.1:" + site.base.rsplit(":", 1)[1] + "/help/refunds"
    assert hits[0].chunk.source == f"{site.base}/help/refunds.html"
    assert hits[0].chunk.updated_at.startswith("2026-11-03")
    assert "Pricing" not in hits[0].chunk.text


async def test_resync_changes_deletions_and_transient_errors(site, make_kb, fake_embeddings):
    source = WebSource(f"{site.base}/sitemap.xml", SourceOptions(web_timeout_s=0.5))
    kb = make_kb()
    await kb.sync([source])
    site.slow.clear()
    site.pages["/help/login"] = ("Signing in", "Sign in with single sign-on or your email address.")
    site.status["/help/refunds.html"] = 500  # a transient failure must not delete the page
    site.pages["/help/new"] = ("New page", "A new article about invoices and reminders.")
    before = fake_embeddings.embedded
    report = await kb.sync([source])
    assert [key.rsplit("/", 1)[-1] for key in report.updated] == ["login"]
    assert [key.rsplit("/", 1)[-1] for key in report.added] == ["new"]
    assert report.deleted == []
    assert any("kept the last good version" in s.reason for s in report.skipped)
    assert fake_embeddings.embedded - before == 2 * 2  # two documents, each a title entry and one passage
    site.status["/help/refunds.html"] = 404
    report = await kb.sync([source])
    assert [key.rsplit("/", 1)[-1] for key in report.deleted] == ["refunds"]


async def test_unreachable_sitemap_keeps_every_page(site, make_kb):
    kb = make_kb()
    source = WebSource(f"{site.base}/sitemap.xml", SourceOptions(web_timeout_s=0.5))
    await kb.sync([source])
    site.pages.clear()  # were the sitemap readable, every page would now be gone
    site.status["/sitemap.xml"] = 503
    report = await kb.sync([source])
    assert report.deleted == []
    assert report.unchanged == 2
    assert "could not fetch the sitemap" in report.skipped[0].reason


class AwkwardSite:
    """Pages that defeat a per-read timeout or a size check made after the download."""

    def __init__(self):
        self.sent: dict[str, int] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        if request.path == "/announced":  # says 400 MB up front, then sends slowly
            response.content_length = 400_000_000
        await response.prepare(request)
        piece, pause, total = {
            "/trickle": (b"<p", 0.2, 200),  # 2 bytes every 0.2 s, for 20 s
            "/endless": (b"x" * 65536, 0.0, 32 * 1024 * 1024),  # 32 MB, no Content-Length
            "/announced": (b"y" * 1024, 0.1, 400_000_000),
        }[request.path]
        self.sent[request.path] = 0
        with contextlib.suppress(ConnectionError):
            while self.sent[request.path] < total:
                await response.write(piece)
                self.sent[request.path] += len(piece)
                await asyncio.sleep(pause)
        return response


@pytest.fixture
async def awkward_site():
    async with serving(AwkwardSite()) as fake:
        yield fake


async def _skip_reason(url: str, options: SourceOptions) -> tuple[str, float]:
    started = time.monotonic()

    async def scan() -> list:
        return [item async for item in WebSource(url, options).scan()]

    items = await asyncio.wait_for(scan(), 25)
    assert len(items) == 1
    return items[0].reason, time.monotonic() - started


async def test_the_timeout_bounds_the_whole_fetch_of_a_trickling_page(awkward_site):
    reason, seconds = await _skip_reason(f"{awkward_site.base}/trickle", SourceOptions(web_timeout_s=1.0))
    assert "timed out" in reason and "HELPDESK_WEB_TIMEOUT_S" in reason
    assert seconds < 3  # the page alone would take 40 s, each read well within the timeout


async def test_a_page_without_content_length_is_dropped_at_the_size_limit(awkward_site):
    options = SourceOptions(max_bytes=256 * 1024, web_timeout_s=20)
    reason, _ = await _skip_reason(f"{awkward_site.base}/endless", options)
    assert reason.startswith("page is at least") and "262,144 bytes" in reason and "stopped reading" in reason
    await asyncio.sleep(0.2)
    assert awkward_site.sent["/endless"] < 8 * 1024 * 1024  # of 32 MB: reading stopped near the limit


async def test_a_page_announcing_a_size_over_the_limit_is_refused_at_once(awkward_site):
    options = SourceOptions(max_bytes=1024 * 1024, web_timeout_s=5)
    reason, seconds = await _skip_reason(f"{awkward_site.base}/announced", options)
    assert "400,000,000 bytes" in reason and "Content-Length" in reason
    assert seconds < 2
