"""Neutralises text that could ping people or forge links on a chat platform."""

from __future__ import annotations

import re

_ZERO_WIDTH = "\u200b"
_BROADCAST = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
_PLATFORM_TOKEN = re.compile(r"<(?=[@#!])")


def neutralise_mentions(text: str) -> str:
    """Break @everyone/@here/@channel and <@user>/<#channel>/<!special> tokens so they cannot notify."""
    text = _BROADCAST.sub(lambda m: "@" + _ZERO_WIDTH + m.group(1), text)
    return _PLATFORM_TOKEN.sub("<" + _ZERO_WIDTH, text)
