"""What a Discord button needs from earlier (a private answer to post, a reply to save), kept until it expires."""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.settings import Settings

# Offers of each kind kept in memory (the oldest forgotten first): a busy server's day of them.
OFFERS_IN_MEMORY = 500


class OffersError(RuntimeError):
    """The offers could not be read or stored (the database is unreachable); the cause is chained."""


class PendingOffers(Protocol):
    """Offers waiting for a click, by key, each a JSON object; forgotten once they expire."""

    async def keep(self, key: str, offer: dict) -> None:
        """Keep an offer (replacing one of the same key) until it expires."""

    async def get(self, key: str) -> dict | None:
        """The offer, or None once it expired or was taken."""

    async def take(self, key: str) -> dict | None:
        """The offer, removed so that no other click gets it; None once it expired or was taken."""


def open_offers(settings: Settings, kind: str, kept_for: timedelta) -> PendingOffers:
    """The offers of one kind: in PostgreSQL with HELPDESK_DATABASE_URL (a click may reach any replica), else in
    this process's memory."""
    if settings.database_url is None:
        return OffersInMemory(kept_for)
    from bot.runtime import open_database
    from connectors.pg_offers import PostgresOffers

    return PostgresOffers(open_database(settings), kind, kept_for)


class OffersInMemory:
    """The latest offers in this process (lost on restart)."""

    def __init__(self, kept_for: timedelta):
        self.kept_for_s = kept_for.total_seconds()
        self._offers: OrderedDict[str, tuple[float, dict]] = OrderedDict()

    async def keep(self, key: str, offer: dict) -> None:
        self._offers.pop(key, None)
        self._offers[key] = (time.monotonic() + self.kept_for_s, offer)
        while len(self._offers) > OFFERS_IN_MEMORY:
            self._offers.popitem(last=False)

    async def get(self, key: str) -> dict | None:
        expires, offer = self._offers.get(key, (0.0, None))
        return offer if expires > time.monotonic() else None

    async def take(self, key: str) -> dict | None:
        expires, offer = self._offers.pop(key, (0.0, None))
        return offer if expires > time.monotonic() else None
