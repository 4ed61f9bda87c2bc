"""`helpdesk serve`: one process running every configured chat connector, /healthz and the sync schedule."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.runtime import open_learnt_answers
from bot.service import HelpdeskBot
from bot.settings import Settings
from connectors.admin import mount_admin
from connectors.admin_sessions import open_admin_sessions
from connectors.discord_bot import DiscordConnector
from connectors.slack import create_slack_connector
from knowledge.base import KnowledgeBase, KnowledgeBaseEmpty
from knowledge.integrity import IndexDamaged
from knowledge.schedule import SyncSchedule
from knowledge.store import SyncInProgress

log = logging.getLogger(__name__)


class Connector(Protocol):
    """A chat platform connection: started once the HTTP server is up, stopped on shutdown."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ConnectorFactory = Callable[[Settings, HelpdeskBot, web.Application], Connector]


@dataclass(frozen=True)
class Platform:
    """A chat platform `serve` can run: whether it is configured, and how to create its connector.

    The factory gets the settings, the bot and the server's aiohttp application (for platforms that
    receive webhooks); it is called before the server starts, so it may add routes.
    """

    name: str
    configured: Callable[[Settings], bool]
    create: ConnectorFactory
    setup_hint: str


PLATFORMS: tuple[Platform, ...] = (
    Platform(
        "Slack",
        lambda settings: settings.slack_bot_token is not None,
        create_slack_connector,
        "SLACK_BOT_TOKEN, plus SLACK_SIGNING_SECRET (Events API over HTTP) or SLACK_APP_TOKEN (Socket Mode)",
    ),
    Platform(
        "Discord",
        DiscordConnector.configured,
        lambda settings, bot, _http: DiscordConnector(bot, settings),
        "DISCORD_BOT_TOKEN (and DISCORD_GUILD_IDS for instant per-server commands)",
    ),
)


class NoPlatformConfigured(RuntimeError):
    """`serve` found no chat platform credentials; the message says what to set."""


class ConnectorFailed(RuntimeError):
    """A connector could not start (bad token, platform unreachable); the cause is chained."""


def configured_platforms(settings: Settings) -> list[Platform]:
    """The platforms with credentials, or NoPlatformConfigured explaining what to set."""
    platforms = [platform for platform in PLATFORMS if platform.configured(settings)]
    if not platforms:
        hints = "; ".join(f"for {platform.name} set {platform.setup_hint}" for platform in PLATFORMS)
        msg = (
            f"No chat platform is configured: {hints} (in the environment or .env). "
            "To talk to the bot without a platform, run `helpdesk chat`."
        )
        raise NoPlatformConfigured(msg)
    return platforms


class HelpdeskServer:
    """The HTTP server (/healthz, platform webhooks), every configured connector, and scheduled syncs."""

    def __init__(self, settings: Settings, bot: HelpdeskBot, knowledge_base: KnowledgeBase | None = None):
        self.settings = settings
        self.bot = bot
        self.knowledge_base = knowledge_base
        self.http = web.Application()
        self.http.router.add_get("/healthz", self._healthz)
        self.connectors: dict[str, Connector] = {
            platform.name.lower(): platform.create(settings, bot, self.http)
            for platform in configured_platforms(settings)
        }
        self.admin = mount_admin(
            self.http,
            settings.admin_token,
            bot,
            knowledge_base,
            self._sync,
            open_learnt_answers(settings),
            open_admin_sessions(settings),
        )
        self.schedule = (
            SyncSchedule(self._sync, settings.sync_cron) if settings.sync_cron and knowledge_base else None
        )
        self._runner: web.AppRunner | None = None
        self._started: list[str] = []
        self._first_sync: asyncio.Task | None = None
        self._warm_up: asyncio.Task | None = None

    @property
    def port(self) -> int:
        """The port the HTTP server listens on."""
        assert self._runner is not None, "the server is not started"
        return self._runner.addresses[0][1]

    async def start(self) -> None:
        """Listen for HTTP, start every connector, then the schedule (and a first sync of an empty base)."""
        self._runner = web.AppRunner(self.http, access_log=None)
        await self._runner.setup()
        host, port = self.settings.http_host, self.settings.http_port
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as error:
            await self.stop()
            msg = (
                f"Could not listen on {host}:{port} ({error.strerror}); set HELPDESK_HTTP_PORT to a free port"
            )
            raise RuntimeError(msg) from error
        try:
            for name, connector in self.connectors.items():
                self._started.append(name)  # stopped on failure too: it may have half started
                await connector.start()
        except Exception as error:
            await self.stop()
            msg = f"Could not start the {name} connector: {error}"
            raise ConnectorFailed(msg) from error
        except BaseException:
            await self.stop()
            raise
        if self.schedule is not None:
            self.schedule.start()
        self._warm_up = asyncio.create_task(self.bot.warm_up())
        if self.knowledge_base is not None:
            self._first_sync = asyncio.create_task(self._sync_if_nothing_to_serve())

    async def stop(self) -> None:
        """Stop taking events, let connectors finish the answers in progress, stop the schedule."""
        if self.schedule is not None:
            self.schedule.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for name in reversed(self._started):
            try:
                await self.connectors[name].stop()
            except Exception:
                log.exception("Stopping the %s connector failed", name)
        self._started.clear()
        for task in (self._first_sync, self._warm_up):
            if task is not None:
                task.cancel()

    async def _healthz(self, request: web.Request) -> web.Response:
        status = {"status": "ok", "connectors": list(self._started)}
        if self.knowledge_base is not None:
            status.update(await self._knowledge_health(self.knowledge_base))
        return web.json_response(status)

    @staticmethod
    async def _knowledge_health(knowledge_base: KnowledgeBase) -> dict:
        """ready, degraded (an older version is served: the newest is damaged), damaged (none usable) or empty."""
        try:
            await knowledge_base.current()
        except KnowledgeBaseEmpty:
            return {"knowledge_base": "empty"}
        except IndexDamaged:
            return {"knowledge_base": "damaged", "damaged_versions": sorted(knowledge_base.damaged)}
        health = {"knowledge_base": "degraded" if knowledge_base.damaged else "ready"}
        health["index_version"] = knowledge_base.served
        if knowledge_base.damaged:
            health["damaged_versions"] = sorted(knowledge_base.damaged)
        return health

    async def _sync_if_nothing_to_serve(self) -> None:
        """Load the index to serve; when there is none (never synced, or every version damaged), sync."""
        assert self.knowledge_base is not None
        try:
            await self.knowledge_base.current()
            return
        except KnowledgeBaseEmpty:
            log.warning("The knowledge base is empty: syncing the configured sources now")
        except IndexDamaged as error:
            log.error("%s; syncing the configured sources now", error)
        await self._sync_logged()

    async def _sync(self) -> None:
        from bot.runtime import open_sources

        assert self.knowledge_base is not None
        try:
            report = await self.knowledge_base.sync(open_sources(self.settings), prune_unlisted=True)
        except SyncInProgress as error:
            log.warning("%s; skipping this sync", error)
            return
        log.info(
            "Sync: %d added, %d updated, %d deleted, %d unchanged (index version %s)",
            len(report.added),
            len(report.updated),
            len(report.deleted),
            report.unchanged,
            report.version,
        )

    async def _sync_logged(self) -> None:
        try:
            await self._sync()
        except Exception:
            log.exception("The first sync failed; run `helpdesk sync` to see why")


async def serve(settings: Settings) -> None:
    """Run the bot on every configured platform until SIGINT or SIGTERM, then shut down cleanly."""
    from bot.runtime import build_bot, close_database, open_knowledge_base

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    configured_platforms(settings)  # fail before loading any model
    knowledge_base = open_knowledge_base(settings)
    server = HelpdeskServer(settings, build_bot(settings, knowledge_base), knowledge_base)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        names = ", ".join(server.connectors)
        log.info("Serving %s; health check at http://%s:%d/healthz", names, settings.http_host, server.port)
        await stop.wait()
        log.info("Shutting down")
    finally:
        await server.stop()
        await close_database(settings)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
