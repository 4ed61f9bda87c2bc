"""Who is logged in to the admin page: in this process, or in PostgreSQL so every replica knows the session."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.settings import Settings
    from connectors.pg_dedupe import PostgresLedger

# An admin session opened with the login form lasts a day in the database; then the token is asked again.
SESSION_TTL_S = 24 * 3600


class AdminSessions(Protocol):
    """The sessions opened with the admin token, by the cookie's value."""

    async def open(self, session: str) -> None: ...

    async def known(self, session: str) -> bool: ...

    async def close(self, session: str) -> None: ...


def open_admin_sessions(settings: Settings) -> AdminSessions:
    """In the database's ledger with HELPDESK_DATABASE_URL (a login works on every replica), else in memory
    (sessions end when the bot restarts)."""
    if settings.database_url is None:
        return SessionsInMemory()
    from bot.runtime import open_database
    from connectors.pg_dedupe import PostgresLedger

    return SessionsInLedger(PostgresLedger(open_database(settings)))


def _key(session: str) -> str:
    """The ledger key of a session: its hash, so the database never holds a usable cookie."""
    return "admin-session:" + hashlib.sha256(session.encode()).hexdigest()


class SessionsInMemory:
    """Sessions known to this process only."""

    def __init__(self):
        self._keys: set[str] = set()

    async def open(self, session: str) -> None:
        self._keys.add(_key(session))

    async def known(self, session: str) -> bool:
        return _key(session) in self._keys

    async def close(self, session: str) -> None:
        self._keys.discard(_key(session))


class SessionsInLedger:
    """Sessions in the shared ledger of PostgreSQL, each expiring after SESSION_TTL_S."""

    def __init__(self, ledger: PostgresLedger):
        self.ledger = ledger

    async def open(self, session: str) -> None:
        await self.ledger.remember(_key(session), SESSION_TTL_S)

    async def known(self, session: str) -> bool:
        return await self.ledger.contains(_key(session))

    async def close(self, session: str) -> None:
        await self.ledger.remember(_key(session), -1)  # expired at once
