"""The relay worker: a ``Relay`` built from settings, and run as ``tenancy relay`` runs it.

``open_relay`` wires the parts (an engine as the relay role, the Kafka producer,
LISTEN on the outbox channel, metrics and tracing when asked for); ``run_relay``
runs one until SIGTERM or SIGINT. The relay itself lives in
``tenancy.relay.loop`` (claim, publish, record, repeat), sending a batch in
``tenancy.relay.batch`` and building each record in ``tenancy.relay.message``;
their public names are importable from here too, as they always were.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from tenancy.db.engine import create_engine
from tenancy.events.outbox import OUTBOX_CHANNEL
from tenancy.relay.claims import RelayOutbox
from tenancy.relay.kafka import KafkaPublisher
from tenancy.relay.loop import Relay
from tenancy.relay.message import to_message
from tenancy.relay.notifications import Listener
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.relay.stats import RelayStats
from tenancy.settings import TenancySettings

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from tenancy.relay.metrics import RelayMetrics

__all__ = ["Relay", "RelayStats", "open_relay", "run_relay", "to_message"]


@contextlib.asynccontextmanager
async def open_relay(
    settings: TenancySettings,
    relay_settings: RelaySettings | None = None,
    kafka_settings: KafkaSettings | None = None,
) -> AsyncIterator[Relay]:
    """Build a relay (engine as the relay role, Kafka producer, LISTEN) and close it after.

    The relay is not started: ``await relay.run()``, or ``async with relay.running()``
    to run it beside a service.
    """
    relay_settings = relay_settings or RelaySettings()
    kafka_settings = kafka_settings or KafkaSettings()
    url = relay_url(settings, relay_settings)
    # The relay runs one statement at a time; two connections cover retention too.
    engine_settings = settings.model_copy(
        update={"pool_size": 2, "max_overflow": 0, "application_name": "tenancy-relay"}
    )
    engine = create_engine(engine_settings, url=url)
    publisher = KafkaPublisher(kafka_settings)
    listener = Listener(
        url.set(drivername="postgresql").render_as_string(hide_password=False),
        OUTBOX_CHANNEL,
        application_name="tenancy-relay-listen",
    )
    relay = Relay(
        RelayOutbox(engine, relay_settings),
        publisher,
        send_timeout=kafka_settings.send_timeout,
        listener=listener,
        metrics=_metrics_for(relay_settings),
        tracer=_tracer_for(settings),
    )
    try:
        yield relay
    finally:
        await publisher.close()
        await engine.dispose()


async def run_relay(
    settings: TenancySettings,
    relay_settings: RelaySettings | None = None,
    kafka_settings: KafkaSettings | None = None,
) -> None:
    """Run a relay until SIGTERM or SIGINT (finish the round, release the rest) or cancellation.

    With ``TENANCY_RELAY_METRICS_PORT`` set, it serves ``/metrics`` and ``/healthz`` too.
    """
    relay_settings = relay_settings or RelaySettings()
    async with open_relay(settings, relay_settings, kafka_settings) as relay:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, relay.stop)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if relay.metrics is not None and relay_settings.metrics_port is not None:
                    from tenancy.relay.metrics_server import serving_metrics

                    await stack.enter_async_context(
                        serving_metrics(
                            relay.metrics,
                            relay.healthy,
                            host=relay_settings.metrics_host,
                            port=relay_settings.metrics_port,
                        )
                    )
                await relay.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


def _metrics_for(relay_settings: RelaySettings) -> RelayMetrics | None:
    if relay_settings.metrics_port is None:
        return None
    # Imported only when asked for: prometheus-client is the metrics extra.
    from tenancy.relay.metrics import RelayMetrics

    return RelayMetrics()


def _tracer_for(settings: TenancySettings) -> Tracer | None:
    if not settings.tracing:
        return None
    # Imported only when asked for: opentelemetry-api is the otel extra.
    from tenancy.observability.tracing import relay_tracer

    return relay_tracer()
