"""Three `helpdesk serve` processes on one PostgreSQL: each Slack event is answered once, whichever replica
gets it and however often, through a replica killed with SIGKILL (the events it acknowledged are taken over by
the others) and a sync published while they serve."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from collections import Counter, defaultdict

import aiohttp
import pytest
from conftest import REPO, SAMPLE_KB, answer_settings
from fake_slack import CHANNEL, FakeSlack, event_callback, mention
from replicas import Replica, Replicas, deliver, replica_environment, run_sync

from connectors.dedupe import open_ledger
from connectors.pending_events import SWEEP_INTERVAL_S
from connectors.slack import CLAIM_LEASE_S
from connectors.slack_reply import APOLOGY

pytestmark = pytest.mark.slow
pytest.importorskip("psycopg")

EVENTS = 300
# Events sent while all three replicas are up; sent before one replica is killed; before the changed
# knowledge base is synced.
HEALTHY = 150
KILL_AFTER = 180
SYNC_AFTER = 200
# Questions open at once (delivered and not yet answered), as in a busy workspace.
IN_FLIGHT = 8
# Slack retries after a minute; here a retry only has to wait for another replica to finish its answer.
RETRY_DELAY_S = 1.0
QUESTIONS = [json.loads(line)["question"] for line in (REPO / "examples" / "acme-kb-questions.jsonl").open()]
LOCKOUT_QUESTION = "How long is my account locked after too many failed sign-in attempts?"


def _change_the_lockout(kb) -> None:
    article = kb / "account" / "reset-password.md"
    text = article.read_text()
    assert "locked for 15 minutes" in text
    article.write_text(text.replace("15 minutes", "45 minutes"))


async def _answer_of(fake: FakeSlack, event: dict) -> str:
    found = await fake.wait_for(
        lambda: [m for m in fake.answers(CHANNEL) if m.get("thread_ts") == event["ts"]], timeout=30
    )
    return found[0]["text"]


async def test_three_replicas_answer_every_event_exactly_once(tmp_path, database_url):
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb)
    choose = random.Random(20261206)
    timeout = aiohttp.ClientTimeout(total=30)
    async with FakeSlack() as fake, aiohttp.ClientSession(timeout=timeout) as session:
        environment = replica_environment(database_url, fake, kb, tmp_path / "worker-data")
        started = time.monotonic()
        await run_sync(environment, tmp_path / "worker")
        print(f"\nsynced in {time.monotonic() - started:.0f} s")
        with Replicas(environment, tmp_path, count=3) as replicas:
            await replicas.ready(session)
            print(f"ready at {time.monotonic() - started:.0f} s")
            first_version = {
                (await (await session.get(r.url + "/healthz")).json())["index_version"]
                for r in replicas.started
            }
            victim = replicas.started[2]
            ledger = open_ledger(answer_settings(tmp_path, database_url=database_url), "slack-events")
            acknowledged: dict[str, set[str]] = defaultdict(set)  # event id → replicas that answered 200
            unreachable: set[str] = set()  # events a delivery of which found the killed replica gone

            async def send(payload: dict, target: Replica, retry_num: int) -> None:
                """One delivery, retried on another live replica until one acknowledges it, as Slack does."""
                deadline = time.monotonic() + CLAIM_LEASE_S + 60
                while (status := await deliver(session, target, payload, retry_num)) != 200:
                    assert status in (None, 503), status  # unreachable, or answered elsewhere: retry later
                    if status is None:
                        assert target is victim, f"{target.name} unreachable"
                        unreachable.add(payload["event_id"])
                    assert time.monotonic() < deadline, f"{payload['event_id']} never acknowledged"
                    await asyncio.sleep(RETRY_DELAY_S)
                    target, retry_num = choose.choice(replicas.alive), retry_num + 1
                acknowledged[payload["event_id"]].add(target.name)

            def settled(payload: dict) -> bool:
                """Answered: by a replica it reached, or by one that took it over from the killed one."""
                return any(m.get("thread_ts") == payload["event"]["ts"] for m in fake.answers(CHANNEL))

            async def deliveries(payload: dict, gate: asyncio.Semaphore, kill: bool = False) -> None:
                """Deliver an event 1-3 times, the retries at once; the next event goes out once it is answered.

                With `kill`, the victim alone gets the event, and is killed once it acknowledged it.
                """
                try:
                    if kill:
                        await send(payload, victim, 0)
                        await asyncio.to_thread(victim.kill)
                        await fake.wait_for(
                            lambda: settled(payload), timeout=CLAIM_LEASE_S + SWEEP_INTERVAL_S + 60
                        )
                        return
                    first, *retries = choose.sample(replicas.started, choose.randint(1, 3))
                    await send(payload, first, 0)
                    # Slack retries a delivery 3 s after it went unacknowledged: by then its replica took it.
                    deadline = time.monotonic() + 60
                    while not (victim.killed or await ledger.contains(f"event:{payload['event_id']}")):
                        assert time.monotonic() < deadline, f"{payload['event_id']} never taken"
                        await asyncio.sleep(0.05)
                    await asyncio.gather(*(send(payload, t, n) for n, t in enumerate(retries, start=1)))
                    await fake.wait_for(
                        lambda: settled(payload), timeout=CLAIM_LEASE_S + SWEEP_INTERVAL_S + 60
                    )
                finally:
                    gate.release()

            async def stream(events: list[dict], kill_at: int | None, sync_at: int | None):
                """Deliver events IN_FLIGHT at a time; kill the victim and start a sync on the way."""
                gate, sending, sync = asyncio.Semaphore(IN_FLIGHT), [], None
                for number, payload in enumerate(events):
                    if number == sync_at:
                        _change_the_lockout(kb)
                        sync = asyncio.create_task(run_sync(environment, tmp_path / "worker"))
                    await gate.acquire()
                    sending.append(asyncio.create_task(deliveries(payload, gate, kill=number == kill_at)))
                    if number == kill_at:
                        await fake.wait_for(lambda: victim.killed, timeout=30)
                await asyncio.gather(*sending)
                return sync

            def answered() -> Counter:
                return Counter(m.get("thread_ts") for m in fake.answers(CHANNEL))

            def replied() -> Counter:
                """Bot messages per thread: an answer, or a placeholder left beside one, counts."""
                return Counter(m.get("thread_ts") for m in fake.bot_messages(CHANNEL))

            events = [event_callback(mention(fake, QUESTIONS[i % len(QUESTIONS)])) for i in range(EVENTS)]
            # All three up: every event is answered exactly once, whichever replicas its deliveries reached.
            await stream(events[:HEALTHY], None, None)
            healthy = {e["event"]["ts"] for e in events[:HEALTHY]}
            await fake.wait_for(lambda: healthy <= set(answered()), timeout=60)
            await asyncio.sleep(1)
            assert set(answered().values()) == {1} and set(answered()) == healthy
            print(f"{HEALTHY} events answered once at {time.monotonic() - started:.0f} s")

            # One replica killed mid-stream, a sync published while they serve.
            sync = await stream(events[HEALTHY:], KILL_AFTER - HEALTHY, SYNC_AFTER - HEALTHY)
            assert sync is not None
            await sync
            print(f"delivered and resynced at {time.monotonic() - started:.0f} s")
            survivors = {r.name for r in replicas.alive}
            every = {e["event"]["ts"] for e in events}
            await fake.wait_for(lambda: every <= set(answered()), timeout=60)
            await asyncio.sleep(CLAIM_LEASE_S / 3)  # past a lease renewal and a few sweeps: nothing more
            # Slack stops delivering an event once a replica acknowledged it: the events the killed replica
            # acknowledged and had not answered are taken over by the others, each answered once.
            assert answered() == Counter(every), "an event was answered twice, or never"
            assert replied() == Counter(every), "a thread holds a placeholder beside its answer"
            assert unreachable, "the killed replica was not sent any delivery"
            taken_over = sum(r.log.read_text().count("taking over event") for r in replicas.alive)
            assert taken_over, f"{victim.name} died with no event acknowledged and unanswered"
            print(
                f"{len(answered())} of {EVENTS} events answered once; {len(unreachable)} redelivered after "
                f"finding {victim.name} dead; {taken_over} acknowledged by it and taken over by the others"
            )

            # Every surviving replica now answers from the synced version, without an error.
            for replica in replicas.alive:
                health = await (await session.get(replica.url + "/healthz")).json()
                assert health["knowledge_base"] == "ready"
                assert health["index_version"] not in first_version
                event = mention(fake, LOCKOUT_QUESTION)
                assert await deliver(session, replica, event_callback(event)) == 200
                text = await _answer_of(fake, event)
                assert "45 minutes" in text and "15 minutes" not in text, text
            assert not any(APOLOGY.text in m.get("text", "") for m in fake.bot_messages(CHANNEL))
            errors = replicas.errors()
            assert all(not errors[name] for name in survivors), errors
