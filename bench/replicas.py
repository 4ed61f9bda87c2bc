"""Answers per second of 1 and of 3 `helpdesk serve` replicas on one PostgreSQL, over Slack's Events API.

Starts a throwaway PostgreSQL with pgvector (pgserver), syncs the sample knowledge base into it, and the fake
Slack of tests/. For each replica count, starts that many `helpdesk serve` processes, warms each up, then
sends `--questions` app_mention events (the sample's questions, one delivery each, spread over the replicas
in turn, `--in-flight` at once) and times them until the last answer is posted. Prints the median answers per
second over `--rounds` rounds, for the extractive writer and, with `--local N`, for the local answer model
on N questions. The voice is off.

    PYTHONPATH=$PWD python bench/replicas.py [--questions 120] [--rounds 3] [--local 12] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_slack import CHANNEL, FakeSlack, event_callback, mention  # noqa: E402
from replicas import Replicas, deliver, replica_environment, run_sync  # noqa: E402

SAMPLE_KB = REPO / "examples" / "acme-kb"
QUESTIONS = [json.loads(line)["question"] for line in (REPO / "examples" / "acme-kb-questions.jsonl").open()]
# The local answer model is assembled (1.1 GB) once for every replica, and kept for the tests' next run.
MODEL_CACHE = Path(tempfile.gettempdir()) / "helpdesk-test-models"
# Seconds a round may take before it is reported as stuck (the local model on 2 cores: ~3 s an answer).
ROUND_TIMEOUT_S = 900.0


async def _answers_per_second(
    fake: FakeSlack, session: aiohttp.ClientSession, replicas: Replicas, count: int, in_flight: int
) -> float:
    events = [event_callback(mention(fake, QUESTIONS[i % len(QUESTIONS)])) for i in range(count)]
    threads = {payload["event"]["ts"] for payload in events}
    targets = itertools.cycle(replicas.started)
    gate = asyncio.Semaphore(in_flight)

    async def send(payload: dict, replica) -> None:
        async with gate:
            status = await deliver(session, replica, payload)
            assert status == 200, status
            # The next event goes out once this one is answered: `in_flight` questions are open at once.
            await fake.wait_for(
                lambda: any(m.get("thread_ts") == payload["event"]["ts"] for m in fake.answers(CHANNEL)),
                timeout=ROUND_TIMEOUT_S,
            )

    started = time.monotonic()
    await asyncio.gather(*(send(payload, next(targets)) for payload in events))
    elapsed = time.monotonic() - started
    answered = {m.get("thread_ts") for m in fake.answers(CHANNEL)} & threads
    assert len(answered) == count, f"{count - len(answered)} questions unanswered"
    return count / elapsed


async def _measure(
    fake: FakeSlack,
    database_url: str,
    root: Path,
    generator: str,
    replica_counts: list[int],
    questions: int,
    rounds: int,
    in_flight: int,
) -> dict[int, list[float]]:
    figures: dict[int, list[float]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        environment = replica_environment(
            database_url,
            fake,
            SAMPLE_KB,
            root / "worker-data",
            HELPDESK_GENERATOR=generator,
            HELPDESK_MODEL_CACHE_DIR=str(MODEL_CACHE),
        )
        for count in replica_counts:
            with Replicas(environment, root / f"{generator}-{count}", count) as replicas:
                await replicas.ready(session)
                for replica in replicas.started:  # the first answer of a process loads what it needs
                    event = mention(fake, QUESTIONS[0])
                    assert await deliver(session, replica, event_callback(event)) == 200
                    await fake.wait_for(
                        lambda event=event: any(
                            m.get("thread_ts") == event["ts"] for m in fake.answers(CHANNEL)
                        ),
                        timeout=ROUND_TIMEOUT_S,
                    )
                figures[count] = [
                    await _answers_per_second(fake, session, replicas, questions, in_flight)
                    for _ in range(rounds)
                ]
                print(
                    f"{generator}, {count} replica(s): "
                    + ", ".join(f"{rate:.2f}" for rate in figures[count])
                    + " answers/s",
                    file=sys.stderr,
                )
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=120, help="questions a round (extractive writer)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=6, help="questions open at once")
    parser.add_argument("--local", type=int, default=0, help="also the local answer model, on N questions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import pgserver

    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-pg-") as pg_folder:
        server = pgserver.get_server(pg_folder, cleanup_mode="stop")
        try:
            server.psql("CREATE DATABASE helpdesk_bench;")
            database_url = server.get_uri("helpdesk_bench")
            with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as folder:
                root = Path(folder)
                # One fake Slack for the whole run: its message timestamps, which the ledger keys, never repeat.
                async with FakeSlack() as fake:
                    await run_sync(replica_environment(database_url, fake, SAMPLE_KB, root / "sync"), root)
                    results = {
                        "extractive": await _measure(
                            fake,
                            database_url,
                            root,
                            "extractive",
                            [1, 3],
                            args.questions,
                            args.rounds,
                            args.in_flight,
                        )
                    }
                    if args.local:
                        results["local"] = await _measure(
                            fake, database_url, root, "local", [1, 3], args.local, 1, args.in_flight
                        )
        finally:
            server.cleanup()
    medians = {
        generator: {
            f"{count} replica{'s' if count > 1 else ''}": round(statistics.median(rates), 2)
            for count, rates in by_count.items()
        }
        for generator, by_count in results.items()
    }
    if args.json:
        print(json.dumps({"median_answers_per_second": medians, "rounds": results}))
        return
    for generator, by_count in medians.items():
        print(
            f"{generator:>10}: " + "; ".join(f"{name}: {rate} answers/s" for name, rate in by_count.items())
        )


if __name__ == "__main__":
    asyncio.run(main())
