"""A picture of the relay's metrics through a broker outage, rendered as SVG.

Writers commit events at a steady rate through the unit of work; the broker is
stopped for a while and started again; the relay's ``/metrics`` endpoint is
scraped over HTTP every ``--interval`` seconds, and the backlog, the lag and the
published total are drawn as they were read. Grafana cannot run on these
machines, so this stands in for its screenshot (the same series as
``examples/grafana/relay-dashboard.json``).

    python -m bench.relay_metrics_picture --out bench/results/relay_metrics.svg
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.database import bench_database
from repositories import PlatformDatabase
from repositories.domain_events import PaymentOrderStatusChanged
from repositories.models import Organization
from tenancy.relay.local_broker import LocalBroker, free_port
from tenancy.relay.settings import KafkaSettings, RelaySettings
from tenancy.relay.worker import run_relay

SERIES = (
    ("tenancy_outbox_backlog", "backlog (events)", "#d62728"),
    ("tenancy_outbox_lag_seconds", "lag (s)", "#ff7f0e"),
    ("tenancy_relay_published_total", "published (total)", "#2ca02c"),
)


@dataclass
class Sample:
    """One scrape: seconds since the start and the series' values."""

    at: float
    values: dict[str, float]


def parse(text: str) -> dict[str, float]:
    """Return the sample values of the text exposition format (no labels used here)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


async def record(args: argparse.Namespace) -> list[Sample]:
    """Run writers, the relay and an outage; return the scrapes."""
    samples: list[Sample] = []
    port = free_port()
    async with bench_database("tenancy_metrics") as settings, LocalBroker() as broker:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            enable_idempotence=False,
            request_timeout_ms=1_000,
            send_timeout=1.5,
        )
        relay_settings = RelaySettings(
            metrics_port=port, metrics_interval=0.2, backoff_max=1.0, poll_interval=0.2
        )
        db = await PlatformDatabase.connect(settings)
        org_id = uuid.uuid4()
        async with db.session(org_id) as session:
            session.add(Organization(id=org_id, name="metrics picture"))
        relay = asyncio.create_task(run_relay(settings, relay_settings, kafka))
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def write() -> None:
            while True:
                async with db.unit_of_work(org_id) as uow:
                    uow.collect(
                        PaymentOrderStatusChanged(
                            aggregate_id=str(uuid.uuid4()), old_status="a", new_status="b"
                        )
                    )
                    await uow.commit()
                await asyncio.sleep(1 / args.rate)

        async def scrape(http: httpx.AsyncClient) -> None:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get("/metrics")
                    samples.append(Sample(loop.time() - start, parse(response.text)))
                await asyncio.sleep(args.interval)

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            tasks = [asyncio.create_task(write()), asyncio.create_task(scrape(http))]
            await asyncio.sleep(args.before)
            await broker.stop()
            await asyncio.sleep(args.outage)
            await broker.start()
            await asyncio.sleep(args.after)
            for task in [*tasks, relay]:
                task.cancel()
            await asyncio.wait([*tasks, relay])
        await db.dispose()
    return samples


def render(samples: Sequence[Sample], outage: tuple[float, float]) -> str:
    """Return an SVG with one panel per series, the outage shaded."""
    width, panel_h, margin = 720, 150, 50
    height = margin + len(SERIES) * (panel_h + margin)
    end = max(s.at for s in samples)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{margin}" y="24" font-size="15">tenancy relay metrics: broker down '
        f"from {outage[0]:.0f}s to {outage[1]:.0f}s (scraped from /metrics)</text>",
    ]
    plot_w = width - 2 * margin
    for index, (name, label, colour) in enumerate(SERIES):
        top = margin + index * (panel_h + margin)
        values = [s.values.get(name, 0.0) for s in samples]
        peak = max(max(values), 1.0)
        x0 = margin + plot_w * outage[0] / end
        x1 = margin + plot_w * outage[1] / end
        points = " ".join(
            f"{margin + plot_w * s.at / end:.1f},{top + panel_h - panel_h * v / peak:.1f}"
            for s, v in zip(samples, values, strict=True)
        )
        parts += [
            f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{panel_h}" '
            'fill="#eeeeee"/>',
            f'<rect x="{margin}" y="{top}" width="{plot_w}" height="{panel_h}" fill="none" '
            'stroke="#999"/>',
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>',
            f'<text x="{margin}" y="{top - 6}">{label}</text>',
            f'<text x="{margin - 6}" y="{top + 10}" text-anchor="end">{peak:.0f}</text>',
            f'<text x="{margin - 6}" y="{top + panel_h}" text-anchor="end">0</text>',
            f'<text x="{margin + plot_w}" y="{top + panel_h + 14}" text-anchor="end">'
            f"{end:.0f} s</text>",
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    """Record and render."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40.0, help="commits per second")
    parser.add_argument("--before", type=float, default=6.0, help="seconds before the outage")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the broker is down")
    parser.add_argument("--after", type=float, default=10.0, help="seconds after it returns")
    parser.add_argument("--interval", type=float, default=0.25, help="scrape interval")
    parser.add_argument("--out", type=Path, default=Path("bench/results/relay_metrics.svg"))
    args = parser.parse_args()
    samples = asyncio.run(record(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(samples, (args.before, args.before + args.outage)))
    peak = max(s.values.get("tenancy_outbox_backlog", 0.0) for s in samples)
    last = samples[-1].values
    print(
        f"{len(samples)} scrapes; peak backlog {peak:.0f}, "
        f"final backlog {last.get('tenancy_outbox_backlog', -1):.0f}, "
        f"published {last.get('tenancy_relay_published_total', -1):.0f}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
