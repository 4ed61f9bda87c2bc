"""nginx with deploy/nginx.conf in front of real `helpdesk serve` replicas it finds through DNS: requests spread
over every replica, go on being answered when one is killed, and reach a replica the DNS adds later."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from conftest import REPO, write
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from fake_slack import FakeSlack, free_port
from replicas import Replicas, replica_environment

NGINX = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is not installed (Debian: nginx-light; scripts/install.sh --test installs it)",
    ),
]
PROXY_CONFIG = REPO / "deploy" / "nginx.conf"
# `bot` resolves to the first two; the third is added to the answer while nginx runs.
REPLICA_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
ADMIN_TOKEN = "proxy-test-admin-token"
# deploy/nginx.conf asks the DNS again every 10 s; the test copy every 2 s, so that a replica added to the
# answer is reached in seconds. What is tested is that nginx asks again at all.
RESOLVER_VALID_S = 2
# nginx starts each request at a random one of the addresses (its resolver rotates them): a replica missed
# by all of these requests happens once in 2**29.
REQUESTS = 30
# The modules of nginx that keep temporary files, each in a folder created when nginx starts.
TEMP_FILES = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class ReplicaNames(BaseResolver):
    """The DNS of the compose network: `bot` is the address of every replica listed, other names do not exist."""

    def __init__(self, addresses: list[str]):
        self.addresses = addresses

    def resolve(self, request, handler):
        reply = request.reply()
        if str(request.q.qname).rstrip(".") != "bot":
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            for address in list(self.addresses):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        return reply


@contextlib.contextmanager
def dns_server(names: ReplicaNames) -> Iterator[int]:
    """A DNS server on 127.0.0.1 (UDP) answering from `names`; yields its port."""
    server = DNSServer(names, address="127.0.0.1", port=0, logger=DNSLogger(logf=lambda _line: None))
    server.start_thread()
    try:
        yield server.server.server_address[1]
    finally:
        server.stop()


def proxy_config_for_test(dns_port: int, listen_port: int, replica_port: int) -> str:
    """deploy/nginx.conf changed only where a test must: its DNS, its ports, and files in its own folder."""
    config = PROXY_CONFIG.read_text()
    for deployed, tested in (
        ("resolver 127.0.0.11 valid=10s", f"resolver 127.0.0.1:{dns_port} valid={RESOLVER_VALID_S}s"),
        ("listen 8080;", f"listen 127.0.0.1:{listen_port};"),
        ("http://bot:3000;", f"http://bot:{replica_port};"),
        # Temporary files in the prefix folder (`nginx -p`) rather than /var/lib/nginx.
        ("http {", "http {\n" + "".join(f"    {kind}_temp_path {kind};\n" for kind in TEMP_FILES)),
    ):
        assert config.count(deployed) == 1, f"deploy/nginx.conf no longer has `{deployed}` once"
        config = config.replace(deployed, tested)
    return "pid nginx.pid;\n" + config


@contextlib.contextmanager
def nginx(folder: Path, config: str) -> Iterator[subprocess.Popen]:
    """nginx in the foreground with `config`, everything it writes in `folder`, its errors in folder/error.log."""
    folder.mkdir(parents=True)
    (folder / "nginx.conf").write_text(config)
    with (folder / "error.log").open("w") as errors:
        process = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", "nginx.conf", "-g", "daemon off;"],
            stdout=errors,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


async def _listening(client: httpx.AsyncClient, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"nginx exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"nginx never listened:\n{log.read_text()}"
        with contextlib.suppress(httpx.ConnectError):
            await client.get("/healthz")
            return
        await asyncio.sleep(0.2)


async def _replicas_answering(client: httpx.AsyncClient, requests: int) -> list[str]:
    """Requests through the proxy, each answered; the replica that answered each, told by the folder it syncs."""
    answered = []
    for _ in range(requests):
        response = await client.get("/admin/sources", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        [folder] = re.findall(r"<td>(/[^<]*/replica-\d/kb)</td>", response.text)
        answered.append(Path(folder).parent.name)
    return answered


async def test_nginx_spreads_requests_over_the_replicas_it_resolves_and_skips_a_dead_one(tmp_path):
    for number in range(len(REPLICA_HOSTS)):
        write(tmp_path / f"replica-{number}" / "kb" / "refunds.md", "# Refunds\n\nRefunds take 14 days.\n")
    names = ReplicaNames(REPLICA_HOSTS[:2])
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeSlack())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        # No database: Replicas gives each replica its own data directory, and each syncs its own folder
        # `kb` when it starts.
        environment = replica_environment("", fake, Path("kb"), tmp_path / "data")
        environment["HELPDESK_ADMIN_TOKEN"] = ADMIN_TOKEN
        replicas = stack.enter_context(
            Replicas(environment, tmp_path, count=len(REPLICA_HOSTS), hosts=REPLICA_HOSTS)
        )
        dns_port = stack.enter_context(dns_server(names))
        await replicas.ready(session)
        print(f"\nreplicas ready in {time.monotonic() - started:.0f} s")
        victim, survivor, added = replicas.started
        proxy_port, proxy_folder = free_port(), tmp_path / "nginx"
        proxy = stack.enter_context(
            nginx(proxy_folder, proxy_config_for_test(dns_port, proxy_port, victim.port))
        )
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy_port}", timeout=30)
        )
        await _listening(client, proxy, proxy_folder / "error.log")

        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["knowledge_base"] == "ready"
        answered = await _replicas_answering(client, REQUESTS)
        assert set(answered) == {"replica-0", "replica-1"}, answered

        victim.kill()
        answered = await _replicas_answering(client, REQUESTS)
        assert set(answered) == {"replica-1"}, answered
        refused = rf'Connection refused\) while connecting to upstream, .* upstream: "http://{re.escape(victim.host)}:'
        assert re.search(refused, (proxy_folder / "error.log").read_text()), "no request was sent to another"

        names.addresses = [survivor.host, added.host]
        deadline = time.monotonic() + RESOLVER_VALID_S + 10
        while await _replicas_answering(client, 1) != ["replica-2"]:
            assert time.monotonic() < deadline, "nginx never asked the DNS again"
            await asyncio.sleep(0.2)
    print(f"done in {time.monotonic() - started:.0f} s")
