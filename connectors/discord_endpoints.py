"""Points discord.py at the configured REST and gateway URLs (Discord itself, a proxy, or a local fake)."""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

# discord.py has no public option for these: every REST call, interaction callback and webhook followup is
# built from `Route.BASE`, and the first gateway connection goes to `DiscordWebSocket.DEFAULT_GATEWAY`.
# tests/test_discord_endpoints.py fails loudly if an upgrade renames them.
_ENDPOINT_ATTRIBUTES = (
    (discord.http.Route, "BASE"),
    (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY"),
)


def point_discord_at(api_url: str, gateway_url: str) -> None:
    """Send discord.py's REST calls to `api_url` (…/api/v10) and its gateway connection to `gateway_url`."""
    for owner, name in _ENDPOINT_ATTRIBUTES:
        if not hasattr(owner, name):
            msg = (
                f"discord.py {discord.__version__} has no {owner.__qualname__}.{name}: this version cannot "
                "be pointed at DISCORD_API_URL / DISCORD_GATEWAY_URL; pin discord.py in pyproject.toml"
            )
            raise RuntimeError(msg)
    if not api_url.startswith(("http://", "https://")):
        msg = f"DISCORD_API_URL must be an http(s) URL such as https://discord.com/api/v10, not {api_url!r}"
        raise ValueError(msg)
    if not gateway_url.startswith(("ws://", "wss://")):
        msg = (
            f"DISCORD_GATEWAY_URL must be a ws(s) URL such as wss://gateway.discord.gg/, not {gateway_url!r}"
        )
        raise ValueError(msg)
    discord.http.Route.BASE = api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
