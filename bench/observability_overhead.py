"""Cost of observing units of work: tracing and metrics off vs on, side by side in one run.

The same tenant read and add + commit through the unit of work, on one database,
at concurrency ``--concurrency``: (off) no observer; (metrics) the Prometheus
metrics; (tracing) a span per unit of work (OpenTelemetry SDK, batch processor,
an exporter that drops what it gets, as a stand-in for OTLP); (on) both. Rounds
interleave the variants; the median ratios to off are printed and written as JSON.

    python -m bench.observability_overhead --seconds 1 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.database import bench_database
from bench.repository_throughput import run_for
from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from tenancy.observability.metrics import MetricsObserver
from tenancy.observability.observer import Observers
from tenancy.observability.tracing import TracingObserver

TENANTS = 20
ROWS_PER_TENANT = 50

Op = Callable[[PlatformDatabase, uuid.UUID, uuid.UUID], Awaitable[None]]


class DroppingExporter(SpanExporter):
    """Accepts spans and keeps none: the export cost without a collector."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Drop ``spans``."""
        return SpanExportResult.SUCCESS


async def get(db: PlatformDatabase, org: uuid.UUID, row: uuid.UUID) -> None:
    """A tenant read by id."""
    async with db.unit_of_work(org) as uow:
        await uow.customers.get(row)


async def add(db: PlatformDatabase, org: uuid.UUID, row: uuid.UUID) -> None:
    """An insert with its outbox event, committed."""
    async with db.unit_of_work(org) as uow:
        await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@new.example"))
        await uow.commit()


async def main() -> None:
    """Seed, then measure off and on in interleaved rounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/observability_overhead.json")
    )
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    async with bench_database("tenancy_observe", pool_size=args.concurrency) as settings:
        off = await PlatformDatabase.connect(settings)
        tracing = TracingObserver(provider.get_tracer("bench"))
        metrics = MetricsObserver()
        variants = {
            "off": off,
            "metrics": PlatformDatabase(off.engine, off.settings, observer=metrics),
            "tracing": PlatformDatabase(off.engine, off.settings, observer=tracing),
            "on": PlatformDatabase(
                off.engine, off.settings, observer=Observers([tracing, metrics])
            ),
        }
        keys: list[tuple[uuid.UUID, uuid.UUID]] = []
        for t in range(TENANTS):
            org = uuid.uuid4()
            async with off.session(org) as session:
                session.add(Organization(id=org, name=f"observe {t}"))
                await session.flush()
                for i in range(ROWS_PER_TENANT):
                    row = Customer(email=f"c{i}@t{t}.example")
                    session.add(row)
                    await session.flush()
                    keys.append((org, row.id))
        results: dict[str, dict[str, list[float]]] = {}
        for name, op in (("get", get), ("add_commit", add)):
            figures: dict[str, list[float]] = {variant: [] for variant in variants}
            for _ in range(args.rounds):
                for variant, db in variants.items():
                    figures[variant].append(
                        await run_for(
                            args.seconds,
                            args.concurrency,
                            lambda org, row, op=op, db=db: op(db, org, row),
                            keys,
                        )
                    )
            line = [f"{name:<11} off={statistics.median(figures['off']):6.0f}/s"]
            for variant in ("metrics", "tracing", "on"):
                ratios = [b / a for a, b in zip(figures["off"], figures[variant], strict=True)]
                figures[f"{variant}/off"] = ratios
                line.append(f"{variant}/off={statistics.median(ratios):.2f}")
            results[name] = figures
            print("  ".join(line))
        await off.dispose()
    provider.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
