"""Slack endpoint under junk: ack latency of signed events, quiet and while unsigned 1 MB bodies pour in.

Runs `helpdesk serve`'s real HTTP server with the Slack connector against the fake Slack of tests/, answering
from the sample knowledge base (keyword retrieval, quoted answers: no model to load). Prints the median, p95
and max ack latency of signed app_mention events side by side: with no junk, then while `--junk` unsigned
bodies of `--junk-mb` MB (a Slack-like event, broken JSON, a JSON list, a bad form payload) are kept in flight
concurrently; also how the junk was answered and how many bytes of log it caused.

    PYTHONPATH=$PWD python bench/slack_junk.py [--signed 40] [--junk 50] [--junk-mb 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from langchain_core.embeddings import DeterministicFakeEmbedding

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_slack import FakeSlack, event_callback, mention, signed_request, slack_settings  # noqa: E402

from bot.runtime import build_bot, open_sources  # noqa: E402
from connectors.server import HelpdeskServer  # noqa: E402
from knowledge.base import KnowledgeBase  # noqa: E402
from knowledge.chunking import Chunker  # noqa: E402

SAMPLE_KB = REPO / "examples" / "acme-kb"
QUESTIONS = ["How do I reset my password?", "How long do refunds take?", "Can I export my data?"]
# Signed events are sent this far apart: a busy support channel, not a load test of the answering itself.
SIGNED_GAP_S = 0.1


class CountingHandler(logging.Handler):
    """Counts the bytes the log would have written, keeping none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.bytes += len(self.format(record)) + 1


def junk_bodies(size: int) -> list[tuple[bytes, str]]:
    """Unsigned bodies of about `size` bytes: a Slack-like event, broken JSON, a JSON list, a bad form."""
    event = json.dumps({"type": "event_callback", "event": {"type": "app_mention", "text": "x" * size}})
    return [
        (event.encode(), "application/json"),
        (event[:-2].encode(), "application/json"),
        (f"[{event}]".encode(), "application/json"),
        (b"payload=" + quote(event[:-2]).encode(), "application/x-www-form-urlencoded"),
    ]


def summary(samples: list[float]) -> dict:
    """Median, p95 and max of latencies in seconds, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def signed_acks(
    session: aiohttp.ClientSession, fake: FakeSlack, count: int
) -> tuple[list[float], list]:
    """Ack latency of `count` signed app_mention events, and their statuses."""
    latencies, statuses = [], []
    for n in range(count):
        body, headers = signed_request(event_callback(mention(fake, QUESTIONS[n % len(QUESTIONS)])))
        started = time.perf_counter()
        async with session.post("/slack/events", data=body, headers=headers) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        statuses.append(response.status)
        await asyncio.sleep(SIGNED_GAP_S)
    return latencies, statuses


async def junk_stream(url: str, junk: tuple[bytes, str], stop: asyncio.Event, statuses: list) -> None:
    """Post one unsigned body after another until stopped, on a connection of its own."""
    body, content_type = junk
    async with aiohttp.ClientSession(url) as session:
        while not stop.is_set():
            try:
                async with session.post(
                    "/slack/events", data=body, headers={"Content-Type": content_type}
                ) as response:
                    await response.read()
                statuses.append(response.status)
            except aiohttp.ClientError as error:  # the server closed the connection before reading it all
                statuses.append(type(error).__name__)


async def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="slack-junk-"))
    log = CountingHandler()
    logging.basicConfig(level=logging.INFO, handlers=[log], force=True)
    async with FakeSlack() as fake:
        settings = slack_settings(
            work, fake, sources=[str(SAMPLE_KB)], retrieval_mode="bm25", data_dir=work / "data"
        )
        kb = KnowledgeBase(settings.data_dir, DeterministicFakeEmbedding(size=32), Chunker(1000, 150), "fake")
        await kb.sync(open_sources(settings))
        server = HelpdeskServer(settings, build_bot(settings, kb))
        await server.start()
        url = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession(url) as session:
                await signed_acks(session, fake, 3)  # warm up: first connection, first answer
                quiet, quiet_statuses = await signed_acks(session, fake, args.signed)
                log_before = log.bytes
                stop, junk_statuses = asyncio.Event(), []
                kinds = junk_bodies(int(args.junk_mb * 1_000_000) - 100)
                streams = [
                    asyncio.create_task(junk_stream(url, kinds[n % len(kinds)], stop, junk_statuses))
                    for n in range(args.junk)
                ]
                await asyncio.sleep(0.2)  # let the junk get going
                loaded, loaded_statuses = await signed_acks(session, fake, args.signed)
                stop.set()
                await asyncio.gather(*streams)
                junk_log_bytes = log.bytes - log_before
        finally:
            await server.stop()
    return {
        "no_junk": {**summary(quiet), "statuses": sorted(set(quiet_statuses))},
        "with_junk": {**summary(loaded), "statuses": sorted(set(loaded_statuses))},
        "junk": {
            "concurrent": args.junk,
            "body_mb": args.junk_mb,
            "requests": len(junk_statuses),
            "answered": {
                s: list(map(str, junk_statuses)).count(s) for s in sorted(set(map(str, junk_statuses)))
            },
            "log_bytes_while_junk": junk_log_bytes,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signed", type=int, default=40, help="signed events measured per phase")
    parser.add_argument("--junk", type=int, default=50, help="unsigned bodies kept in flight at once")
    parser.add_argument("--junk-mb", type=float, default=1.0, help="size of each unsigned body in MB")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'signed event ack':<18}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}  statuses")
    for phase in ("no_junk", "with_junk"):
        row = result[phase]
        statuses = ",".join(map(str, row["statuses"]))
        print(f"{phase:<18}{row['median_ms']:>11}{row['p95_ms']:>9}{row['max_ms']:>9}  {statuses}")
    junk = result["junk"]
    print(
        f"junk: {junk['requests']} unsigned {junk['body_mb']} MB bodies, {junk['concurrent']} at a time, "
        f"answered {junk['answered']}; {junk['log_bytes_while_junk']:,} bytes logged meanwhile"
    )


if __name__ == "__main__":
    main()
