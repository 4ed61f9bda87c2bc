"""The turns of each Discord answer thread, so a follow-up there is answered knowing what came before."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from bot.models import Turn

if TYPE_CHECKING:
    from bot.settings import Settings

# Threads remembered in memory (the oldest forgotten first), and the latest turns kept of each.
THREADS = 1000
THREAD_TURNS = 20


class ThreadMemoryError(RuntimeError):
    """The turns of a thread could not be read or stored (the database is unreachable); the cause is chained."""


class ThreadMemory(Protocol):
    """Remembers the conversation of each answer thread."""

    async def turns(self, thread_id: str) -> tuple[Turn, ...] | None:
        """The thread's turns, oldest first; None for a thread that is not an answer thread (or forgotten)."""

    async def add(self, thread_id: str, question: str, answer: str) -> None:
        """Append a question and its answer to the thread's turns (starting them for a new thread)."""


def open_thread_memory(settings: Settings) -> ThreadMemory:
    """In PostgreSQL with HELPDESK_DATABASE_URL (shared by replicas), else in this process's memory."""
    if settings.database_url is None:
        return ThreadsInMemory()
    from bot.runtime import open_database
    from connectors.pg_thread_memory import PostgresThreadMemory

    return PostgresThreadMemory(open_database(settings))


def latest(turns: tuple[Turn, ...]) -> tuple[Turn, ...]:
    """The turns a thread keeps."""
    return turns[-THREAD_TURNS:]


class ThreadsInMemory:
    """The latest threads' turns in this process (lost on restart)."""

    def __init__(self):
        self._threads: OrderedDict[str, tuple[Turn, ...]] = OrderedDict()

    async def turns(self, thread_id: str) -> tuple[Turn, ...] | None:
        return self._threads.get(thread_id)

    async def add(self, thread_id: str, question: str, answer: str) -> None:
        turns = (*self._threads.pop(thread_id, ()), Turn("user", question), Turn("assistant", answer))
        self._threads[thread_id] = latest(turns)
        while len(self._threads) > THREADS:
            self._threads.popitem(last=False)
