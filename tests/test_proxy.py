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
from conftest import REPO
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from fake_slack import FakeSlack, free_port
from replicas import Replicas, replica_environment

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
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


async def _knowledge_base_of_the_replica_that_answers(client: httpx.AsyncClient) -> str:
    """One request through the proxy; the replica that answered it, told by the folder it syncs from."""
    response = await client.get("/admin/sources", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    [folder] = re.findall(r"<td>(/[^<]*/replica-\d/kb)</td>", response.text)
    return Path(folder).parent.name


async def test_nginx_spreads_requests_over_the_replicas_it_resolves_and_skips_a_dead_one(tmp_path):
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light); .ci/run installs it")
    names = ReplicaNames(REPLICA_HOSTS[:2])
    for number in range(len(REPLICA_HOSTS)):  # each replica syncs its own folder, named after it
        (tmp_path / f"replica-{number}" / "kb").mkdir(parents=True)
        (tmp_path / f"replica-{number}" / "kb" / "refunds.md").write_text(
            "# Refunds\n\nRefunds are issued within 14 days of a request.\n"
        )
    started = time.monotonic()
    async with FakeSlack() as fake, aiohttp.ClientSession() as session:
        # No database: every replica has its own data directory and syncs its folder `kb` when it starts.
        environment = replica_environment("", fake, Path("kb"), tmp_path / "unused")
        environment["HELPDESK_ADMIN_TOKEN"] = ADMIN_TOKEN
        with (
            Replicas(environment, tmp_path, count=len(REPLICA_HOSTS), hosts=REPLICA_HOSTS) as replicas,
            dns_server(names) as dns_port,
        ):
            await replicas.ready(session)
            print(f"\nreplicas ready in {time.monotonic() - started:.0f} s")
            proxy_port = free_port()
            config = proxy_config_for_test(dns_port, proxy_port, replicas.started[0].port)
            proxy_folder = tmp_path / "nginx"
            with nginx(proxy_folder, config) as proxy:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{proxy_port}", timeout=30) as client:
                    await _listening(client, proxy, proxy_folder / "error.log")

                    health = await client.get("/healthz")
                    assert health.status_code == 200
                    assert health.json()["knowledge_base"] == "ready"

                    answered = [
                        await _knowledge_base_of_the_replica_that_answers(client) for _ in range(REQUESTS)
                    ]
                    assert set(answered) == {"replica-0", "replica-1"}, answered

                    victim, survivor, added = replicas.started
                    victim.kill()
                    answered = [
                        await _knowledge_base_of_the_replica_that_answers(client) for _ in range(REQUESTS)
                    ]
                    assert set(answered) == {"replica-1"}, answered
                    refused = "Connection refused) while connecting to upstream, client: 127.0.0.1"
                    errors = (proxy_folder / "error.log").read_text()
                    assert refused in errors and f'upstream: "http://{victim.host}:' in errors, errors

                    names.addresses = [survivor.host, added.host]
                    deadline = time.monotonic() + RESOLVER_VALID_S + 10
                    while await _knowledge_base_of_the_replica_that_answers(client) != "replica-2":
                        assert time.monotonic() < deadline, "nginx never asked the DNS again"
                        await asyncio.sleep(0.2)
    print(f"done in {time.monotonic() - started:.0f} s")
