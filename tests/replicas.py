"""Replicas of `helpdesk serve` as real processes on one database, and Slack's deliveries of events to them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, free_port, signed_request

REPO = Path(__file__).resolve().parent.parent
# Loading PyTorch and the embedding model on two busy cores; three replicas start side by side.
READY_TIMEOUT_S = 180.0


def replica_environment(
    database_url: str, fake: FakeSlack, sources: Path, data_dir: Path, **settings: str
) -> dict[str, str]:
    """The environment of a bot process: the shared database, the fake Slack, quoted answers and no voice.

    Variables of the surrounding shell that configure the bot are left out; `settings` add or override.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HELPDESK_", "SLACK_", "DISCORD_", "OPENAI_"))
    }
    return {
        **inherited,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HELPDESK_DATABASE_URL": database_url,
        "HELPDESK_SOURCES": str(sources),
        "HELPDESK_DATA_DIR": str(data_dir),
        "HELPDESK_GENERATOR": "extractive",
        "HELPDESK_TONE_ENABLED": "false",
        "HELPDESK_HTTP_HOST": "127.0.0.1",
        "COLUMNS": "240",  # log lines are not wrapped
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        **settings,
    }


def helpdesk(*arguments: str) -> list[str]:
    """The command line of `helpdesk ARGUMENTS` in this checkout."""
    return [sys.executable, "-m", "connectors", *arguments]


async def run_sync(environment: dict[str, str], workdir: Path) -> subprocess.CompletedProcess:
    """`helpdesk sync` as its own process (as the sync worker runs it); fails with its output if it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    done = await asyncio.to_thread(
        subprocess.run,
        helpdesk("sync", "--json"),
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"helpdesk sync failed:\n{done.stdout}\n{done.stderr}"
    return done


@dataclass
class Replica:
    """One `helpdesk serve` process, its port and its log."""

    name: str
    process: subprocess.Popen
    port: int
    log: Path
    host: str = "127.0.0.1"
    killed: bool = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no answer in progress finished, no connection closed cleanly."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def free_port_on(hosts: list[str]) -> int:
    """A TCP port free on every one of these addresses."""
    while True:
        port = free_port()
        with contextlib.ExitStack() as probes:
            try:
                for host in hosts:
                    probes.enter_context(socket.socket()).bind((host, port))
            except OSError:
                continue
            return port


@dataclass
class Replicas:
    """`count` replicas started side by side, each with its own data directory and port; all killed on exit.

    With `hosts`, replica N listens on hosts[N], all on one port, as containers behind one service name do.
    Each replica runs in its own folder (root/replica-N), so a relative HELPDESK_SOURCES is its own.
    """

    environment: dict[str, str]
    root: Path
    count: int
    hosts: list[str] = field(default_factory=list)
    started: list[Replica] = field(default_factory=list)

    def __enter__(self) -> Replicas:
        assert not self.hosts or len(self.hosts) == self.count, "one address for each replica"
        shared_port = free_port_on(self.hosts) if self.hosts else None
        for number in range(self.count):
            folder = self.root / f"replica-{number}"
            folder.mkdir(parents=True, exist_ok=True)
            port = shared_port or free_port()
            host = self.hosts[number] if self.hosts else self.environment["HELPDESK_HTTP_HOST"]
            environment = {
                **self.environment,
                "HELPDESK_DATA_DIR": str(folder / "data"),
                "HELPDESK_HTTP_HOST": host,
                "HELPDESK_HTTP_PORT": str(port),
            }
            log = folder / "serve.log"
            with log.open("w") as output:  # the child keeps its own copy of the file descriptor
                process = subprocess.Popen(
                    helpdesk("serve"), env=environment, cwd=folder, stdout=output, stderr=subprocess.STDOUT
                )
            self.started.append(Replica(f"replica-{number}", process, port, log, host))
        return self

    def __exit__(self, *exc) -> None:
        for replica in self.started:
            if replica.process.poll() is None:
                replica.kill()

    @property
    def alive(self) -> list[Replica]:
        return [replica for replica in self.started if not replica.killed]

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Wait until every replica serves the knowledge base (its /healthz says ready)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        for replica in self.started:
            while True:
                assert replica.process.poll() is None, f"{replica.name} exited:\n{replica.log.read_text()}"
                assert time.monotonic() < deadline, f"{replica.name} never ready:\n{replica.log.read_text()}"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(replica.url + "/healthz") as response:
                        if (await response.json()).get("knowledge_base") == "ready":
                            break
                await asyncio.sleep(0.5)

    def errors(self) -> dict[str, list[str]]:
        """The lines each replica logged at ERROR level or with a traceback."""
        return {
            replica.name: [
                line
                for line in replica.log.read_text().splitlines()
                if re.search(r"\bERROR\b", line) or "Traceback" in line
            ]
            for replica in self.started
        }


async def deliver(
    session: aiohttp.ClientSession, replica: Replica, payload: dict, retry_num: int = 0
) -> int | None:
    """POST a signed event as Slack does (a retry carries X-Slack-Retry-Num); the status, None if unreachable."""
    body, headers = signed_request(payload)
    if retry_num:
        headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_error"}
    try:
        async with session.post(replica.url + "/slack/events", data=body, headers=headers) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return None
