"""The Slack app manifest asks for exactly what the connector uses: its events, scopes and endpoint."""

from __future__ import annotations

import yaml
from conftest import REPO

from connectors.slack import EVENTS_PATH


def test_manifest_subscribes_to_what_the_connector_answers():
    manifest = yaml.safe_load((REPO / "slack-manifest.yml").read_text())
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
    }
    assert settings["interactivity"]["is_enabled"] is True
    for url in (settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]):
        assert url.endswith(EVENTS_PATH)
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "channels:history", "groups:history", "im:history"} <= scopes
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
