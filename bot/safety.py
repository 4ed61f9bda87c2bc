"""Neutralises text that could ping people or forge links on a chat platform; spots orders to an assistant."""

from __future__ import annotations

import re

_ZERO_WIDTH = "\u200b"
_BROADCAST = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
_PLATFORM_TOKEN = re.compile(r"<(?=[@#!])")
# The opening of the commonest prompt injection ("Ignore all previous instructions and…"): a help article
# never tells its reader to disregard earlier instructions, so text that does is addressed to an assistant.
_ORDERS_TO_ASSISTANT = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding)\s+(?:instructions|prompts?|directions|rules)\b",
    re.IGNORECASE,
)


def gives_orders_to_an_assistant(text: str) -> bool:
    """True for text that tells an AI assistant to disregard its instructions (a planted prompt injection)."""
    return _ORDERS_TO_ASSISTANT.search(text) is not None


def neutralise_mentions(text: str) -> str:
    """Break @everyone/@here/@channel and <@user>/<#channel>/<!special> tokens so they cannot notify."""
    text = _BROADCAST.sub(lambda m: "@" + _ZERO_WIDTH + m.group(1), text)
    return _PLATFORM_TOKEN.sub("<" + _ZERO_WIDTH, text)
