"""Run syncs on a cron schedule inside an asyncio event loop (the CLI's foreground loop or the bot server)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from knowledge.backend import DatabaseUnavailable, PgvectorMissing
from knowledge.integrity import IndexDamaged
from knowledge.store import DataDirNotWritable, SyncInProgress

log = logging.getLogger(__name__)
# Failures whose message already says what is wrong and what to do: logged as one line, no traceback.
EXPLAINED_FAILURES = (DataDirNotWritable, DatabaseUnavailable, IndexDamaged, PgvectorMissing, ValueError)


def parse_cron(expression: str) -> CronTrigger:
    """A trigger from a crontab expression (five fields, or six with leading seconds)."""
    fields = expression.split()
    try:
        if len(fields) == 6:
            names = ("second", "minute", "hour", "day", "month", "day_of_week")
            return CronTrigger(**dict(zip(names, fields, strict=True)))
        return CronTrigger.from_crontab(expression)
    except ValueError as error:
        msg = f"Invalid cron expression {expression!r} ({error}); expected five fields like '*/30 * * * *'"
        raise ValueError(msg) from None


class SyncSchedule:
    """Calls a sync coroutine on a cron schedule; a failed run is logged and the next run still happens."""

    def __init__(self, run_sync: Callable[[], Awaitable[object]], cron: str):
        self.trigger = parse_cron(cron)
        self.run_sync = run_sync
        self.scheduler = AsyncIOScheduler()
        self.runs = 0
        self.failures = 0

    async def run_once(self) -> None:
        """Run one sync now; a failure is logged (one line when its message says what to do) and not raised."""
        self.runs += 1
        try:
            await self.run_sync()
        except SyncInProgress as error:
            log.warning("%s; skipping this run", error)
        except EXPLAINED_FAILURES as error:
            self.failures += 1
            log.error("Scheduled sync failed: %s. The next run will try again%s", error, self._next())
        except Exception:
            self.failures += 1
            log.exception("Scheduled sync failed; the next run will try again%s", self._next())

    def _next(self) -> str:
        due = self.next_run()
        return f" at {due:%Y-%m-%d %H:%M:%S %Z}" if due else ""

    def start(self) -> None:
        """Start the schedule on the running event loop; overlapping runs are skipped, not queued."""
        self.scheduler.add_job(
            self.run_once, self.trigger, max_instances=1, coalesce=True, id="knowledge-sync"
        )
        self.scheduler.start()

    def next_run(self):
        """When the next sync is due."""
        job = self.scheduler.get_job("knowledge-sync")
        return job.next_run_time if job else None

    def stop(self) -> None:
        """Stop the schedule; a run in progress is not interrupted."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
