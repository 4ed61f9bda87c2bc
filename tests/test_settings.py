"""Settings: environment and .env parsing, defaults, and an .env.example that lists exactly the settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_KB
from pydantic import ValidationError

from bot.settings import Settings

# Where .env.example's variables for docker compose (not settings of the bot) begin.
COMPOSE_ONLY_MARKER = "# --- docker-compose.yml only"


def test_env_example_lists_exactly_the_settings():
    bot_part = (REPO / ".env.example").read_text().split(COMPOSE_ONLY_MARKER)[0]
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", bot_part, re.MULTILINE))
    expected = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        expected.add(alias.choices[0] if alias else f"HELPDESK_{name.upper()}")
    assert listed == expected


def test_env_example_values_are_valid_settings(tmp_path):
    (tmp_path / ".env").write_text((REPO / ".env.example").read_text())
    assert Settings() == Settings(_env_file=None)


def test_sources_from_environment_and_default(monkeypatch):
    assert Settings().source_specs() == [str(SAMPLE_KB)]
    monkeypatch.setenv("HELPDESK_SOURCES", "docs/, https://help.example/sitemap.xml")
    assert Settings().source_specs() == ["docs/", "https://help.example/sitemap.xml"]


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("HELPDESK_DATA_DIR=/srv/helpdesk\nHELPDESK_TOP_K=7\n")
    settings = Settings()
    assert settings.data_dir == Path("/srv/helpdesk") and settings.top_k == 7


def test_invalid_values_are_rejected(monkeypatch):
    monkeypatch.setenv("HELPDESK_RETRIEVAL_MODE", "magic")
    with pytest.raises(ValidationError, match="retrieval_mode"):
        Settings()


@pytest.mark.parametrize("value", ["lots", "1.5GB", "512", "512mib", "0MB", "3TB"])
def test_a_build_memory_postgres_would_refuse_is_named_with_what_to_write(monkeypatch, value):
    monkeypatch.setenv("HELPDESK_DATABASE_BUILD_MEMORY", value)
    with pytest.raises(ValidationError, match=f"HELPDESK_DATABASE_BUILD_MEMORY='{value}' is not an amount"):
        Settings()


def test_a_build_memory_is_written_as_postgres_reads_it(monkeypatch):
    monkeypatch.setenv("HELPDESK_DATABASE_BUILD_MEMORY", " 2gb ")
    assert Settings().database_build_memory == "2GB"
    assert Settings(database_build_memory="").database_build_memory is None


def test_platform_settings_use_the_platforms_own_names(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "123, 456")
    settings = Settings()
    assert settings.slack_bot_token.get_secret_value() == "xoxb-secret"
    assert "xoxb-secret" not in repr(settings)
    assert settings.discord_guild_ids == [123, 456]
