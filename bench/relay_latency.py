"""The relay benchmark's latency phase: events at a steady rate, timed from commit to consumer.

A consumer per fetch wait, each in a process of its own (``bench.relay_consumer``),
records when each event arrives. Every figure is split at the relay's send (the
record's timestamp, ms resolution, the same for every consumer): the relay's
part (wake-up, claim, batching) and, per consumer, the broker's plus its fetch's.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from typing import Any

from sqlalchemy import text

from bench.relay_events import TOPIC_PREFIX, make_event
from bench.relay_variant import stop
from tenancy import Database
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import write_outbox
from tenancy.relay.settings import KafkaSettings

#: Per consumer: event id -> (received, sent by the relay's producer), wall-clock seconds.
Arrivals = dict[uuid.UUID, tuple[float, float]]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` in ms, rounded."""
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def consumer_name(fetch_max_wait_ms: int) -> str:
    """The key of one measuring consumer's figures."""
    return f"fetch_max_wait_ms={fetch_max_wait_ms}"


async def start_consumer(
    kafka: KafkaSettings, fetch_max_wait_ms: int
) -> asyncio.subprocess.Process:
    """Start a measuring consumer in its own process (``bench.relay_consumer``)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.relay_consumer",
        kafka.bootstrap_servers,
        TOPIC_PREFIX,
        str(fetch_max_wait_ms),
        stdout=asyncio.subprocess.PIPE,
    )


async def measure_latency(
    db: Database,
    kafka: KafkaSettings,
    org_id: uuid.UUID,
    rate: int,
    seconds: float,
    per_transaction: int,
    fetch_waits: list[int],
) -> dict[str, Any]:
    """Commit events at ``rate``/s, ``per_transaction`` per commit; time commit to receipt.

    One consumer process per fetch wait in ``fetch_waits`` (ms) reads every event.
    Times are wall-clock seconds of this machine, taken where each thing happens.
    """
    committed: dict[uuid.UUID, float] = {}
    arrived: list[Arrivals] = [{} for _ in fetch_waits]
    all_sent = asyncio.Event()
    all_arrived = [asyncio.Event() for _ in fetch_waits]

    def check(n: int) -> None:
        if all_sent.is_set() and committed.keys() <= arrived[n].keys():
            all_arrived[n].set()

    consumers = [await start_consumer(kafka, wait) for wait in fetch_waits]

    async def receive(n: int) -> None:
        stream = consumers[n].stdout
        if stream is None:
            raise RuntimeError("no pipe from the consumer")
        while line := await stream.readline():
            event_id, received, sent = line.split()
            arrived[n].setdefault(uuid.UUID(event_id.decode()), (float(received), float(sent)))
            check(n)

    receivers = [asyncio.create_task(receive(n)) for n in range(len(consumers))]
    try:
        # Warm up until every consumer's position is fixed and it sees new events.
        while not all(arrived):
            async with db.session(org_id) as session:
                await write_outbox(session, [make_event("warm-up")])
            await asyncio.sleep(0.1)
        for seen in arrived:
            seen.clear()

        gate = asyncio.Semaphore(12)  # below the pool size: a slow machine lags, not fails

        async def commit(events: list[DomainEvent]) -> None:
            async with gate, db.session(org_id) as session:
                await write_outbox(session, events)
            done = time.time()
            for event in events:
                committed[event.event_id] = done

        total = int(rate * seconds) // per_transaction * per_transaction
        aggregates = [str(uuid.uuid4()) for _ in range(100)]
        tasks = []
        start = time.perf_counter()
        for n in range(0, total, per_transaction):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the load at a steady rate
            events = [make_event(aggregates[(n + i) % 100]) for i in range(per_transaction)]
            tasks.append(asyncio.create_task(commit(events)))
        await asyncio.gather(*tasks)
        achieved = total / (time.perf_counter() - start)
        all_sent.set()
        for n in range(len(consumers)):
            check(n)
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(done.wait() for done in all_arrived))
        except TimeoutError:
            missing = [len(committed.keys() - seen.keys()) for seen in arrived]
            raise RuntimeError(f"of {len(committed)} events, consumers miss {missing}") from None
    finally:
        for consumer in consumers:
            await stop(consumer)
        for receiver in receivers:
            receiver.cancel()
        await asyncio.wait(receivers)
    relay_side = await relay_latencies(db, org_id, list(committed))
    # The record's timestamp is the relay's send time, the same in every consumer.
    sent = {i: sent for i, (_, sent) in arrived[0].items()}
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": round(achieved),
        "events": total,
        "events_per_transaction": per_transaction,
        "commit_to_consumer": {
            consumer_name(wait): percentiles(
                [1000 * (seen[i][0] - committed[i]) for i in committed]
            )
            for wait, seen in zip(fetch_waits, arrived, strict=True)
        },
        "commit_to_sent": percentiles([1000 * (sent[i] - committed[i]) for i in committed]),
        "sent_to_consumer": {
            consumer_name(wait): percentiles([1000 * (seen[i][0] - sent[i]) for i in committed])
            for wait, seen in zip(fetch_waits, arrived, strict=True)
        },
        "insert_to_published": percentiles(relay_side),
    }


async def relay_latencies(db: Database, org_id: uuid.UUID, ids: list[uuid.UUID]) -> list[float]:
    """Return, per event, ms from its outbox insert to the relay marking it published."""
    query = text(
        "SELECT 1000 * extract(epoch FROM published_at - occurred_at) FROM outbox_events"
        " WHERE id = ANY(:ids)"
    )
    async with db.session(org_id) as session:
        return [float(ms) for ms in (await session.execute(query, {"ids": ids})).scalars()]
