"""The Docker image and the compose file of several replicas: their structure, commands and variables."""

from __future__ import annotations

import json
import re

import typer
import yaml
from conftest import REPO
from test_settings import COMPOSE_ONLY_MARKER

from bot.settings import Settings
from connectors.cli import app

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
NGINX = (REPO / "deploy" / "nginx.conf").read_text()
# ${NAME}, ${NAME:-default}, ${NAME:?message}: the variables docker compose fills in from .env.
INTERPOLATED = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?[-?][^}]*)?\}")
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")


def _setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.choices[0] if alias else f"HELPDESK_{name.upper()}")
    return names


def _env_example() -> tuple[set[str], set[str]]:
    """The settings .env.example lists, and the variables it lists for docker compose only."""
    bot_part, compose_part = (REPO / ".env.example").read_text().split(COMPOSE_ONLY_MARKER)
    listed = re.compile(r"^([A-Z][A-Z0-9_]+)=", re.MULTILINE)
    return set(listed.findall(bot_part)), set(listed.findall(compose_part))


def _dockerfile_instruction(name: str) -> str:
    """The arguments of the last instruction `name`, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = re.findall(rf"^{name}\s+(.*)$", joined, re.MULTILINE)
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def _assert_cli_command(argv: list[str]) -> None:
    """argv is `helpdesk COMMAND [--option …]`, with a command and options the CLI really has."""
    assert argv[0] == "helpdesk", argv
    group = typer.main.get_command(app)
    command = group.commands.get(argv[1])
    assert command is not None, f"`helpdesk {argv[1]}` is not a command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in argv[2:]:
        if word.startswith("-"):
            assert word.split("=")[0] in options, f"`helpdesk {argv[1]}` has no option {word}"


def test_the_compose_file_runs_a_database_replicas_a_proxy_and_one_worker():
    services = COMPOSE["services"]
    assert set(services) == {"db", "bot", "worker", "proxy"}
    assert services["db"]["image"].startswith("pgvector/pgvector:pg16")
    bot, worker = services["bot"], services["worker"]
    assert bot["deploy"]["replicas"] >= 2
    assert "ports" not in bot, "replicas are reached through the proxy; a fixed host port cannot scale"
    assert "replicas" not in worker.get("deploy", {}), "exactly one worker runs the schedule"
    for service in (bot, worker):
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert "/data" in " ".join(service["volumes"])
        assert service["environment"]["HELPDESK_DATABASE_URL"].startswith("postgresql://")
        assert "@db:5432/" in service["environment"]["HELPDESK_DATABASE_URL"]
    assert "/data" in _dockerfile_instruction("VOLUME")


def test_only_the_worker_syncs_on_a_schedule():
    services = COMPOSE["services"]
    assert services["bot"]["environment"]["HELPDESK_SYNC_CRON"] == ""
    assert Settings(_env_file=None, sync_cron="").sync_cron is None  # empty means no schedule in `serve`
    worker = services["worker"]
    assert worker["command"][:2] == ["helpdesk", "sync"]
    assert (
        INTERPOLATED.search(worker["environment"]["HELPDESK_SYNC_CRON"]).group(0).endswith(":-*/30 * * * *}")
    )
    sync_cron = typer.main.get_command(app).commands["sync"].params
    assert any(param.name == "cron" and param.envvar == "HELPDESK_SYNC_CRON" for param in sync_cron)


def test_the_commands_are_real_cli_commands():
    cmd = json.loads(_dockerfile_instruction("CMD"))
    assert cmd == ["helpdesk", "serve"]
    _assert_cli_command(cmd)
    for service in ("bot", "worker"):
        _assert_cli_command(COMPOSE["services"][service]["command"])


def test_every_variable_the_compose_file_reads_is_documented_in_env_example():
    settings, compose_only = _env_example()
    assert settings == _setting_names()
    referenced = set(INTERPOLATED.findall((REPO / "docker-compose.yml").read_text()))
    assert referenced <= settings | compose_only, referenced - settings - compose_only
    assert compose_only <= referenced, "a compose-only variable the compose file never reads"
    assert not compose_only & _setting_names()
    for service in COMPOSE["services"].values():
        for name in service.get("environment", {}):
            assert name in settings or name.startswith("POSTGRES_"), name


def test_no_secret_is_written_into_the_image_or_the_compose_file():
    for instruction in ("ENV", "ARG"):
        for line in re.findall(rf"^{instruction}\s+(.*)$", re.sub(r"\\\n\s*", " ", DOCKERFILE), re.MULTILINE):
            assert not any(word in line.upper() for word in SECRET_WORDS), line
    for service in COMPOSE["services"].values():
        for name, value in service.get("environment", {}).items():
            if any(word in name for word in SECRET_WORDS) or "://" in str(value):
                password = re.sub(r"^postgresql://[^:]*:", "", str(value)).split("@")[0]
                assert password == "" or INTERPOLATED.fullmatch(password), (name, "a literal secret")
    assert re.search(r"^\.env$", (REPO / ".dockerignore").read_text(), re.MULTILINE)


def test_the_image_runs_as_a_user_offline_and_checks_its_health_route():
    assert _dockerfile_instruction("USER") not in ("root", "0")
    env = _dockerfile_instruction("ENV")
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env
    healthcheck = _dockerfile_instruction("HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE
    assert re.search(r"pip install (-e )?\"\.\[postgres\]\"", DOCKERFILE), (
        "the project with its postgres extra"
    )


def test_the_proxy_spreads_requests_over_every_replica():
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in COMPOSE["services"]["proxy"]["volumes"]
    port = COMPOSE["services"]["bot"]["environment"]["HELPDESK_HTTP_PORT"]
    assert f"http://bot:{port}" in NGINX
    assert re.search(r"resolver 127\.0\.0\.11 valid=\d+s", NGINX), "re-resolves `bot` as replicas come and go"
    [published] = COMPOSE["services"]["proxy"]["ports"]
    assert published.endswith(":" + re.search(r"listen (\d+);", NGINX).group(1))
