"""DISCORD_API_URL / DISCORD_GATEWAY_URL rely on two discord.py class attributes: fail loudly if they go."""

from __future__ import annotations

import discord
import discord.gateway
import discord.http
import pytest
import yarl

from connectors.discord_endpoints import point_discord_at
from connectors.discord_gateway import USER_EVENTS, drop_malformed_events


@pytest.fixture(autouse=True)
def _restore_endpoints(monkeypatch):
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )


def test_discord_py_still_has_the_attributes_we_point_at_the_configured_urls():
    # If this fails after a discord.py upgrade, DISCORD_API_URL and DISCORD_GATEWAY_URL silently do nothing:
    # find the new names in discord/http.py and discord/gateway.py and update connectors/discord_endpoints.py.
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"


def test_point_discord_at_changes_every_route_and_the_gateway():
    point_discord_at("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway")
    assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
    assert isinstance(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"


def test_a_discord_py_without_the_attribute_is_reported(monkeypatch):
    monkeypatch.delattr(discord.http.Route, "BASE")
    with pytest.raises(RuntimeError, match=r"no Route\.BASE"):
        point_discord_at("https://discord.com/api/v10", "wss://gateway.discord.gg/")


def test_urls_of_the_wrong_kind_are_rejected():
    with pytest.raises(ValueError, match="DISCORD_API_URL"):
        point_discord_at("discord.com/api", "wss://gateway.discord.gg/")
    with pytest.raises(ValueError, match="DISCORD_GATEWAY_URL"):
        point_discord_at("https://discord.com/api/v10", "https://gateway.discord.gg/")


def test_discord_py_still_parses_user_events_where_malformed_ones_are_caught():
    # If this fails after a discord.py upgrade, find where ConnectionState keeps its parsers
    # (discord/state.py) and update connectors/discord_gateway.py.
    client = discord.Client(intents=discord.Intents.none())
    drop_malformed_events(client)
    for event in USER_EVENTS:
        client._connection.parsers[event]({"id": "1"})  # logged and dropped, not raised


def test_a_discord_py_without_the_parsers_is_reported(monkeypatch):
    client = discord.Client(intents=discord.Intents.none())
    monkeypatch.delattr(client._connection, "parsers")
    with pytest.raises(RuntimeError, match=r"pin discord\.py"):
        drop_malformed_events(client)
