"""Load test: many workers over many tenants through the unit of work, direct and via pgbouncer.

N workers (default 200) act for M tenants (default 50) for T seconds against a
pool of P connections (default 20), mixing reads, spec queries and writes. It
reports throughput, p50/p95/p99 latency, pool wait, errors, pool timeouts
(back-pressure) and isolation violations (rows read that carry another
tenant's id). The same runs through pgbouncer in transaction mode with
``pooler="pgbouncer-transaction"``.

It creates a scratch database, migrates it with ``tenancy.schema.migration.upgrade``,
and drops it afterwards. It exits 1 if any error other than pool back-pressure
occurred, or any isolation violation. A script, not a test::

    python -m bench.load --seconds 10
    python -m bench.load --mode pgbouncer --workers 400 --pool-size 10 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.database import bench_database
from bench.load_workload import Metrics, Tenant, run_load, seed
from repositories import PlatformDatabase
from tenancy import TenancySettings
from tenancy.testing.pgbouncer import running_pgbouncer

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
RESULTS = Path(__file__).parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--pool-timeout", type=float, default=10.0)
    parser.add_argument("--rows", type=int, default=20, help="customers and products per tenant")
    parser.add_argument("--mode", choices=["direct", "pgbouncer", "both"], default="both")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="superuser URL without database")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    if min(args.workers, args.tenants, args.pool_size) < 1 or args.seconds <= 0:
        parser.error("workers, tenants, pool size and seconds must be positive")
    return args


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50/p95/p99/max of ``samples`` (seconds) in milliseconds."""
    if len(samples) < 2:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": max(samples, default=0.0) * 1000}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * 1000, 2),
        "p95": round(cuts[94] * 1000, 2),
        "p99": round(cuts[98] * 1000, 2),
        "max": round(max(samples) * 1000, 2),
    }


def summarize(mode: str, metrics: Metrics, elapsed: float) -> dict[str, Any]:
    """Return the figures of one run as a JSON-ready dict."""
    every = [x for samples in metrics.latencies.values() for x in samples]
    return {
        "mode": mode,
        "elapsed_s": round(elapsed, 2),
        "operations": len(every),
        "throughput_ops_s": round(len(every) / elapsed, 1),
        "latency_ms": percentiles(every),
        "latency_ms_by_kind": {k: percentiles(v) for k, v in metrics.latencies.items()},
        "operations_by_kind": {k: len(v) for k, v in metrics.latencies.items()},
        "pool_wait_ms": percentiles(metrics.pool_waits),
        "pool_wait_total_s": round(sum(metrics.pool_waits), 2),
        "pool_timeouts": metrics.pool_timeouts,
        "errors": sum(metrics.errors.values()),
        "error_kinds": dict(metrics.errors.most_common(10)),
        "isolation_violations": metrics.isolation_violations,
        "rows_checked": metrics.rows_checked,
    }


async def run_mode(
    mode: str, settings: TenancySettings, args: argparse.Namespace, tenants: list[Tenant]
) -> dict[str, Any]:
    """Connect with a pool of ``--pool-size``, run the load, and return its summary."""
    pooled = settings.model_copy(
        update={"pool_size": args.pool_size, "max_overflow": 0, "pool_timeout": args.pool_timeout}
    )
    db = await PlatformDatabase.connect(pooled)
    try:
        grace = args.pool_timeout + pooled.statement_timeout_ms / 1000 + 10
        metrics, elapsed = await run_load(
            db, tenants, workers=args.workers, seconds=args.seconds, grace=grace
        )
    finally:
        await db.dispose()
    return summarize(mode, metrics, elapsed)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Create the scratch database, seed it, run each mode, and return all figures."""
    runs = []
    async with bench_database("tenancy_load", args.server) as settings:
        seeder = await PlatformDatabase.connect(settings.model_copy(update={"pool_size": 4}))
        try:
            tenants = await seed(seeder, args.tenants, args.rows)
        finally:
            await seeder.dispose()
        if args.mode in ("direct", "both"):
            runs.append(await run_mode("direct", settings, args, tenants))
        if args.mode in ("pgbouncer", "both"):
            async with running_pgbouncer(
                settings.app_url(), pool_size=args.pool_size, max_client_conn=2000
            ) as bouncer:
                bounced = bouncer.url(settings.app_url())
                through = settings.model_copy(
                    update={
                        "database_url": bounced.render_as_string(hide_password=False),
                        "pooler": "pgbouncer-transaction",
                    }
                )
                runs.append(await run_mode("pgbouncer-transaction", through, args, tenants))
    config = {k: v for k, v in vars(args).items() if k not in ("json", "server")}
    return {"config": config, "runs": runs}


def render(result: dict[str, Any]) -> str:
    """Return a short human-readable table of the runs."""
    lines = [f"config: {result['config']}"]
    for run in result["runs"]:
        lat, wait = run["latency_ms"], run["pool_wait_ms"]
        lines.append(
            f"{run['mode']:>22}: {run['throughput_ops_s']:>8} ops/s  "
            f"p50 {lat['p50']} ms  p95 {lat['p95']} ms  p99 {lat['p99']} ms  "
            f"pool wait p50 {wait['p50']} / p99 {wait['p99']} ms  "
            f"errors {run['errors']}  pool timeouts {run['pool_timeouts']}  "
            f"isolation violations {run['isolation_violations']} "
            f"(of {run['rows_checked']} rows)"
        )
        lines.extend(f"{'':>24}error: {kind} x{n}" for kind, n in run["error_kinds"].items())
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    """Run the load test; return 1 if any error or isolation violation occurred."""
    args = parse_args(argv)
    result = asyncio.run(main(args))
    print(render(result))
    target = args.json or RESULTS / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {target}")
    failed = any(run["errors"] or run["isolation_violations"] for run in result["runs"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli())
