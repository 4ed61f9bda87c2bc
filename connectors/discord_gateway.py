"""Keeps the Discord gateway running when an event from users cannot be parsed: it is logged and dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import discord

log = logging.getLogger(__name__)

# Events whose payloads carry what users typed or clicked. discord.py parses each inside the gateway's read
# loop, where one exception (a payload without a token, say) ends the connection for good.
USER_EVENTS = ("INTERACTION_CREATE", "MESSAGE_CREATE")


def drop_malformed_events(client: discord.Client) -> None:
    """Make the client log and skip a user event it cannot parse instead of disconnecting."""
    state = getattr(client, "_connection", None)
    parsers = getattr(state, "parsers", None)
    if not isinstance(parsers, dict) or not all(event in parsers for event in USER_EVENTS):
        msg = (
            f"discord.py {discord.__version__} keeps its gateway event parsers elsewhere: a malformed event "
            "would end the Discord connection; pin discord.py in pyproject.toml"
        )
        raise RuntimeError(msg)
    for event in USER_EVENTS:
        parsers[event] = _tolerant(event, parsers[event])


def _tolerant(event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
    def parse_or_drop(data: Any) -> None:
        try:
            parse(data)
        except Exception as error:  # the payload is never logged: it is what a user wrote
            event_id = data.get("id") if isinstance(data, dict) else None
            log.error(
                "Discord: dropped a malformed %s event %s (%s: %s)",
                event,
                event_id,
                type(error).__name__,
                error,
            )

    return parse_or_drop
