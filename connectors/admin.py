"""The admin page of `helpdesk serve` at /admin: report, coverage gaps, conversations, sources, sync now."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import SecretStr

from bot.learning import AnswerLearning
from bot.report import build_report, gaps_csv, parse_period
from bot.service import HelpdeskBot
from connectors.admin_sessions import AdminSessions
from knowledge.base import KnowledgeBase, KnowledgeBaseEmpty
from knowledge.sources.learnt import LearntStore, UnknownEntry

log = logging.getLogger(__name__)

SESSION_COOKIE = "helpdesk_admin"
CONVERSATIONS_PER_PAGE = 25
SYNCS_SHOWN = 10
# Periods of the overview, and the default period of the coverage gaps page.
OVERVIEW_PERIODS = ("7d", "30d")
GAPS_PERIOD = "30d"
_TEMPLATES = Path(__file__).resolve().parent / "admin_templates"


Handler = Callable[["AdminPage", web.Request], Awaitable[web.StreamResponse]]


def admin_only(handler: Handler) -> Handler:
    """A page served only to requests carrying the admin token or a session opened with it."""

    @functools.wraps(handler)
    async def guarded(self: AdminPage, request: web.Request) -> web.StreamResponse:
        if not await self._authorised(request):
            return self._refused(request)
        return await handler(self, request)

    return guarded


class AdminPage:
    """Serves /admin to whoever presents the admin token: as a Bearer header, or once in the login form."""

    def __init__(
        self,
        token: str,
        bot: HelpdeskBot,
        knowledge_base: KnowledgeBase,
        start_sync: Callable[[], Awaitable[None]],
        learnt: LearntStore,
        sessions: AdminSessions,
    ):
        self._token = token.encode()
        self.bot = bot
        self.knowledge_base = knowledge_base
        self.start_sync = start_sync
        self.learning = AnswerLearning(bot.journal, knowledge_base, learnt)
        self._sessions = sessions
        self._syncs: set[asyncio.Task] = set()
        self.templates = Environment(
            loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True)
        )

    def mount(self, http: web.Application) -> None:
        """Add the admin routes to the server."""
        http.router.add_get("/admin", self._overview)
        http.router.add_get("/admin/gaps", self._gaps)
        http.router.add_get("/admin/gaps.csv", self._gaps_csv)
        http.router.add_get("/admin/conversations", self._conversations)
        http.router.add_get("/admin/sources", self._sources)
        http.router.add_post("/admin/sync", self._sync)
        http.router.add_post("/admin/learnt/{entry_id}/forget", self._forget)
        http.router.add_get("/admin/login", self._login_form)
        http.router.add_post("/admin/login", self._login)
        http.router.add_post("/admin/logout", self._logout)

    # -- authentication ----------------------------------------------------------------------------------
    def _token_matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._token)

    async def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self._token_matches(header.removeprefix("Bearer ").strip())
        session = request.cookies.get(SESSION_COOKIE, "")
        return bool(session) and await self._sessions.known(session)

    def _refused(self, request: web.Request, error: str | None = None) -> web.Response:
        if "Authorization" in request.headers:  # a script: no form
            return web.Response(status=401, text="401: a valid admin token is required\n")
        return self._page("login.html", status=401, error=error, next=request.path_qs)

    async def _login_form(self, request: web.Request) -> web.Response:
        return self._page("login.html", status=200, error=None, next=request.query.get("next", "/admin"))

    async def _login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._token_matches(str(form.get("token", ""))):
            log.warning("Admin page: a login with a wrong token from %s", request.remote)
            return self._refused(request, error="That token is not right.")
        session = secrets.token_urlsafe(32)
        await self._sessions.open(session)
        target = str(form.get("next", "/admin"))
        response = _see_other(target if target.startswith("/admin") else "/admin")
        response.set_cookie(
            SESSION_COOKIE, session, httponly=True, samesite="Strict", secure=request.secure, path="/admin"
        )
        return response

    async def _logout(self, request: web.Request) -> web.Response:
        if session := request.cookies.get(SESSION_COOKIE, ""):
            await self._sessions.close(session)
        response = _see_other("/admin/login")
        response.del_cookie(SESSION_COOKIE, path="/admin")
        return response

    def _page(self, template: str, status: int = 200, **values) -> web.Response:
        html = self.templates.get_template(template).render(**values)
        return web.Response(status=status, text=html, content_type="text/html")

    # -- pages -------------------------------------------------------------------------------------------
    async def _report(self, since: str, *, with_gaps: bool):
        kb = self.knowledge_base
        return await build_report(
            self.bot.journal, kb, kb.embeddings, parse_period(since), with_gaps=with_gaps
        )

    @admin_only
    async def _overview(self, request: web.Request) -> web.Response:
        from connectors.admin_chart import questions_per_day_svg, share_svg

        periods = []
        for since in OVERVIEW_PERIODS:
            report = await self._report(since, with_gaps=False)
            volume = report.volume
            periods.append(
                {
                    "since": since,
                    "volume": volume,
                    "chart": questions_per_day_svg(report.per_day),
                    "share": share_svg(volume["answered"], volume["refused"]),
                }
            )
        return self._page("overview.html", active="overview", periods=periods)

    async def _gap_report(self, request: web.Request):
        """The period asked for (?since=, default 30d) and its report with the coverage gaps."""
        since = request.query.get("since", GAPS_PERIOD)
        try:
            parse_period(since)
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return since, await self._report(since, with_gaps=True)

    @admin_only
    async def _gaps(self, request: web.Request) -> web.Response:
        since, report = await self._gap_report(request)
        return self._page("gaps.html", active="gaps", since=since, gaps=report.gaps)

    @admin_only
    async def _gaps_csv(self, request: web.Request) -> web.Response:
        since, report = await self._gap_report(request)
        return web.Response(
            text=gaps_csv(report.gaps),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="coverage-gaps-{since}.csv"'},
        )

    @admin_only
    async def _conversations(self, request: web.Request) -> web.Response:
        search = request.query.get("q", "").strip()
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        offset = (page - 1) * CONVERSATIONS_PER_PAGE
        rows, total = await self.bot.journal.conversations(search, CONVERSATIONS_PER_PAGE, offset)
        for row in rows:
            row["asked"] = datetime.fromtimestamp(row["asked_at"], UTC).strftime("%Y-%m-%d %H:%M")
        pages = max(1, -(-total // CONVERSATIONS_PER_PAGE))
        return self._page(
            "conversations.html",
            active="conversations",
            rows=rows,
            search=search,
            page=page,
            pages=pages,
            total=total,
        )

    @admin_only
    async def _sources(self, request: web.Request) -> web.Response:
        kb = self.knowledge_base
        published = await kb.backend.published()
        per_source: Counter[str] = Counter()
        try:
            version = await kb.current()
        except KnowledgeBaseEmpty:
            health = "empty: nothing has been synced yet; start a sync"
        except Exception as error:  # a damaged index version: say so, keep the page up
            health = f"cannot be read ({type(error).__name__}: {error}); run `helpdesk sync`"
        else:
            health = f"ok, {len(version)} entries"
            origins = version.manifest.get("origins", {})
            for document in version.manifest.get("documents", {}).values():
                per_source[origins.get(document.get("origin"), {}).get("source", "?")] += 1
        syncs = (await kb.sync_log.entries())[-SYNCS_SHOWN:][::-1]
        for entry in syncs:
            entry["started"] = str(entry.get("started_at", "?"))[:19].replace("T", " ")
        return self._page(
            "sources.html",
            active="sources",
            version=published,
            health=health,
            per_source=sorted(per_source.items()),
            syncs=syncs,
            learnt=await self.learning.answers.entries(),
            forgot=request.query.get("forgot"),
            sync_started=request.query.get("sync") == "started",
            syncing=any(not task.done() for task in self._syncs),
        )

    @admin_only
    async def _sync(self, request: web.Request) -> web.Response:
        if not any(not task.done() for task in self._syncs):
            self._in_background(self.start_sync(), "A sync started from the admin page failed")
        return _see_other("/admin/sources?sync=started")

    @admin_only
    async def _forget(self, request: web.Request) -> web.Response:
        """Remove a learnt answer at once; it leaves the index with a sync of the learnt answers."""
        entry_id = request.match_info["entry_id"]
        try:
            await self.learning.answers.remove(entry_id)
        except UnknownEntry:
            raise web.HTTPNotFound(text=f"No learnt answer {entry_id}\n") from None
        log.info("Admin page: learnt answer %s removed", entry_id)
        self._in_background(self.learning.reindex(), "A sync after removing a learnt answer failed")
        return _see_other(f"/admin/sources?forgot={entry_id}")

    def _in_background(self, work: Awaitable[None], failure: str) -> None:
        async def logged() -> None:
            try:
                await work
            except Exception:
                log.exception(failure)

        task = asyncio.create_task(logged())
        self._syncs.add(task)
        task.add_done_callback(self._syncs.discard)


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def mount_admin(
    http: web.Application,
    token: SecretStr | None,
    bot: HelpdeskBot,
    knowledge_base: KnowledgeBase | None,
    start_sync: Callable[[], Awaitable[None]],
    learnt: LearntStore,
    sessions: AdminSessions,
) -> AdminPage | None:
    """Serve the admin page when an admin token is set (HELPDESK_ADMIN_TOKEN); otherwise nothing."""
    if token is None or not token.get_secret_value():
        return None
    page = AdminPage(
        token.get_secret_value(),
        bot,
        knowledge_base or bot.chain.retriever.knowledge_base,
        start_sync,
        learnt,
        sessions,
    )
    page.mount(http)
    return page
