"""The outbox relay: publishes committed events to the broker, at least once, in order.

One pass claims a batch (see ``tenancy.relay.claims`` for why claims keep each
aggregate's order across relays), publishes it, and records the outcome. When
more events are known to wait (the batch was full, or a notification came in
meanwhile), the outcome is recorded in the transaction that claims the next
batch, which follows at once: under load a batch costs one transaction, not two,
and an event committed during a pass waits that much less. Inside
a batch the events of one aggregate are sent in *rounds*: the n-th event of an
aggregate goes out only after its (n-1)-th was acknowledged, while different
aggregates share each round, so a batch costs one round trip per event of its
busiest aggregate. A failure therefore never lets a later event of the same
aggregate overtake an earlier one, even without an idempotent producer.

An event that fails stops its aggregate for the rest of the batch, and the
outbox keeps it stopped: while the event backs off, and for good once it is
dead-lettered, until an operator re-queues or discards it (``tenancy relay
requeue|discard``). Broker errors are transient unless known to be permanent
(``tenancy.relay.kafka``); transient ones are retried without using up attempts, so
a broker outage of any length dead-letters nothing.

Rows are marked published only after the broker acknowledged them. A crash
leaves its rows leased until the lease runs out; cancellation and ``stop()``
release them at once. Either way a row is sent again, never lost: consumers
de-duplicate by event id (``EventConsumer`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from tenancy.db.engine import create_engine
from tenancy.errors import ConfigurationError, DatabaseUnavailable, RetryableError
from tenancy.events.outbox import OUTBOX_CHANNEL
from tenancy.log import get_logger
from tenancy.observability.observer import valid_traceparent
from tenancy.relay.admin import RelayAdmin
from tenancy.relay.claims import ClaimedEvent, Failure, Outcome, RelayOutbox
from tenancy.relay.kafka import KafkaPublisher
from tenancy.relay.log import log_blocked, log_failure
from tenancy.relay.notifications import Listener
from tenancy.relay.publisher import (
    AGGREGATE_TYPE_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    ORG_ID_HEADER,
    TRACEPARENT_HEADER,
    BrokerUnavailable,
    Message,
    Publisher,
    PublishError,
)
from tenancy.relay.settings import KafkaSettings, RelaySettings, relay_url
from tenancy.settings import TenancySettings

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from tenancy.observability.tracing import BatchSpan
    from tenancy.relay.metrics import RelayMetrics

logger = get_logger(__name__)

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
# Stop opening new rounds once this share of the lease is used: the rest of the
# batch is released rather than risk another relay claiming it mid-send.
_LEASE_BUDGET = 0.8
# Per-aggregate memory of consecutive transient failures (for their back-off); an
# aggregate another relay took over is never cleared here, so the map is capped.
_TRANSIENT_MEMORY = 10_000
# How many blocked aggregates one periodic report names in the log.
_BLOCKED_REPORT = 20

AggregateKey = tuple[uuid.UUID, str, str]


def to_message(event: ClaimedEvent, topic_prefix: str) -> Message:
    """Build the record for ``event``: topic per aggregate type, key = aggregate id.

    Raises:
        PublishError: (not retriable) the topic name is not one Kafka accepts.
    """
    topic = f"{topic_prefix}{event.aggregate_type}"
    if _TOPIC.match(topic) is None:
        raise PublishError(f"invalid topic name {topic!r}", retriable=False)
    headers = [
        (EVENT_ID_HEADER, str(event.id).encode()),
        (EVENT_TYPE_HEADER, event.event_type.encode()),
        (ORG_ID_HEADER, str(event.org_id).encode()),
        (AGGREGATE_TYPE_HEADER, event.aggregate_type.encode()),
    ]
    # Only a well-formed traceparent: the column is writable by the app role.
    traceparent = valid_traceparent(event.trace_context)
    if traceparent is not None:
        headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return Message(
        topic=topic,
        key=event.aggregate_id.encode(),
        value=event.payload.encode(),
        headers=tuple(headers),
    )


@dataclass
class RelayStats:
    """Counters since the relay started."""

    claims: int = 0
    batches: int = 0
    published: int = 0
    retried: int = 0
    dead: int = 0
    #: Failures that used up no attempt (the broker away or restarting).
    transient: int = 0
    #: Passes that found the broker or database away and paused the relay.
    pauses: int = 0


class Relay:
    """Moves outbox rows to the broker until stopped or cancelled."""

    def __init__(
        self,
        outbox: RelayOutbox,
        publisher: Publisher,
        *,
        send_timeout: float,
        listener: Listener | None = None,
        metrics: RelayMetrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        """Wire the relay; ``send_timeout`` bounds one round of sends.

        With ``metrics`` (the ``metrics`` extra), it counts what it does and
        refreshes the outbox gauges every ``metrics_interval`` seconds.

        Raises:
            ConfigurationError: the lease is too short to cover a round of sends.
        """
        self.settings = outbox.settings
        if self.settings.lease_seconds * _LEASE_BUDGET <= send_timeout:
            raise ConfigurationError("lease_seconds must exceed the send timeout by 25% or more")
        self.outbox = outbox
        self.publisher = publisher
        self.send_timeout = send_timeout
        self.listener = listener
        self.metrics = metrics
        #: With a tracer (``TENANCY_TRACING``), a span per batch linked to its producers.
        self.tracer = tracer
        self.stats = RelayStats()
        #: Set while the relay is caught up and waits for a notification or its poll.
        self.idle = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        # Current back-off while the broker or database is away; 0 when healthy.
        self._backoff = 0.0
        # Consecutive transient failures per aggregate: their retries back off too.
        self._transient: dict[AggregateKey, int] = {}

    def stop(self) -> None:
        """Ask the relay to finish the round in flight, release the rest and return."""
        self._stopped.set()
        self._wake.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        """Run the relay in a background task for the enclosed block, then stop it."""
        task = asyncio.create_task(self.run(), name=f"relay {self.settings.relay_id}")
        try:
            yield self
        finally:
            self.stop()
            await task

    async def run(self) -> None:
        """Relay until ``stop()`` or cancellation, waking on NOTIFY or every poll interval."""
        helpers: list[asyncio.Task[None]] = []
        if self.listener is not None:
            helpers.append(asyncio.create_task(self.listener.run(self._wake.set)))
        if self.metrics is not None:
            helpers.append(asyncio.create_task(self._refresh_gauges(self.metrics)))
        loop = asyncio.get_running_loop()
        next_retention = loop.time()
        # The last batch's outcome while the next claim (which records it) is due at
        # once; None whenever anything else comes next. _relay_pass keeps it so.
        unsettled: Outcome | None = None
        self._running = True
        try:
            while not self._stopped.is_set():
                try:
                    if unsettled is None and loop.time() >= next_retention:
                        await self._delete_published()
                        await self._report_blocked()
                        next_retention = loop.time() + self.settings.retention_interval
                    count, unsettled = await self._relay_pass(
                        unsettled, chain=loop.time() < next_retention
                    )
                except (BrokerUnavailable, DatabaseUnavailable, RetryableError) as exc:
                    delay = self._back_off()
                    self.stats.pauses += 1
                    if self.metrics is not None:
                        self.metrics.pauses.inc()
                        if isinstance(exc, BrokerUnavailable):
                            self.metrics.broker_reachable.set(0)
                    logger.warning("relay paused for %.1fs: %s", delay, exc)
                    await self._pause(delay)
                    continue
                if unsettled is not None:
                    continue
                if self._backoff:
                    await self._pause(self._backoff)
                elif count < self.settings.batch_size:
                    await self._idle()
        finally:
            if unsettled is not None:  # a pass checks for stop() first; never strand one
                await self._settle_or_log(unsettled)
            self._running = False
            for helper in helpers:
                helper.cancel()
            if helpers:
                await asyncio.wait(helpers)

    async def relay_once(self) -> int:
        """Claim, publish and settle one batch; return how many events it held.

        Raises:
            BrokerUnavailable: the broker cannot be reached (nothing was claimed).
            DatabaseUnavailable: the database cannot be reached.
            RetryableError: a claim or settle hit a deadlock; the next pass retries.
        """
        count, _ = await self._relay_pass(None, chain=False)
        return count

    async def _relay_pass(
        self, unsettled: Outcome | None, *, chain: bool
    ) -> tuple[int, Outcome | None]:
        """Record ``unsettled`` while claiming a batch, publish the batch, return its size.

        The batch's outcome is returned unrecorded only if ``chain`` allows it and
        more events are known to wait, for the next pass to record with its claim;
        otherwise it is recorded here. When this raises, both are recorded (or, if
        the database is away, left to their leases).
        """
        self._wake.clear()
        try:
            await self.publisher.start()
            batch = await self.outbox.claim(settling=unsettled)
        except BaseException:
            if unsettled is not None:
                await self._settle_or_log(unsettled)
            raise
        if unsettled is not None:
            self._count(unsettled)
        self.stats.claims += 1
        if not batch:
            self._backoff = 0.0
            if self.metrics is not None:
                self.metrics.broker_reachable.set(1)
            return 0, None
        started = asyncio.get_running_loop().time()
        published: list[ClaimedEvent] = []
        failures: list[Failure] = []
        with self._batch_span(batch) as span:
            try:
                await self._publish_in_rounds(batch, published, failures)
            except BaseException:
                # Cancelled (or broken) mid-batch: keep what was acknowledged and hand
                # the rest back now instead of when the lease runs out.
                await self._settle_or_log(self._outcome(batch, published, failures))
                raise
            if span is not None:
                span.outcome(len(published), len(failures))
        outcome = self._outcome(batch, published, failures)
        if self.metrics is not None:
            self.metrics.batch_seconds.observe(asyncio.get_running_loop().time() - started)
            # Away only if nothing was acknowledged and every failure was its absence.
            away = failures and not published and all(f.transient for f in failures)
            self.metrics.broker_reachable.set(0 if away else 1)
        more = len(batch) >= self.settings.batch_size or self._wake.is_set()
        if chain and more and not self._backoff and not self._stopped.is_set():
            return len(batch), outcome
        await self.outbox.settle(outcome.published, outcome.retries, outcome.released)
        self._count(outcome)
        return len(batch), None

    async def _publish_in_rounds(
        self, batch: Sequence[ClaimedEvent], published: list[ClaimedEvent], failures: list[Failure]
    ) -> None:
        chains: dict[AggregateKey, deque[ClaimedEvent]] = {}
        for event in batch:
            key = (event.org_id, event.aggregate_type, event.aggregate_id)
            chains.setdefault(key, deque()).append(event)
        deadline = asyncio.get_running_loop().time() + self.settings.lease_seconds * _LEASE_BUDGET
        while chains and not self._stopped.is_set():
            if asyncio.get_running_loop().time() + self.send_timeout > deadline:
                return  # what is left is released by _settle
            heads: list[ClaimedEvent] = []
            messages: list[Message] = []
            for chain in chains.values():
                try:
                    messages.append(to_message(chain[0], self.settings.topic_prefix))
                except PublishError as exc:
                    failures.append(Failure(chain[0], str(exc)))
                    chain.clear()  # its later events wait behind it (released, blocked)
                    continue
                heads.append(chain[0])
            results = await self.publisher.publish(messages) if messages else []
            self._round_done(heads, results, chains, published, failures)
            chains = {key: chain for key, chain in chains.items() if chain}

    def _round_done(
        self,
        heads: Sequence[ClaimedEvent],
        results: Sequence[PublishError | None],
        chains: dict[AggregateKey, deque[ClaimedEvent]],
        published: list[ClaimedEvent],
        failures: list[Failure],
    ) -> None:
        # Nothing acknowledged and every error transient: the broker is away, and the
        # whole relay backs off (not only these events).
        outage = bool(results) and all(r is not None and r.retriable for r in results)
        delay = self._back_off() if outage else 0.0
        if any(r is None for r in results):
            self._backoff = 0.0
        if len(self._transient) > _TRANSIENT_MEMORY:
            self._transient.clear()
        for event, error in zip(heads, results, strict=True):
            key = (event.org_id, event.aggregate_type, event.aggregate_id)
            chain = chains[key]
            if error is None:
                published.append(chain.popleft())
                self._transient.pop(key, None)
                continue
            # Whatever the error, the aggregate stops here: its later events must
            # not overtake this one (they are released, and blocked while it waits).
            chain.clear()
            if error.retriable:
                count = self._transient.get(key, 0) + 1
                self._transient[key] = count
                wait = max(delay, self.settings.backoff(count))
                failures.append(Failure(event, str(error), transient=True, delay=wait))
            else:
                self._transient.pop(key, None)
                failures.append(Failure(event, str(error)))

    def _outcome(
        self, batch: Sequence[ClaimedEvent], published: list[ClaimedEvent], failures: list[Failure]
    ) -> Outcome:
        done = {(e.org_id, e.id) for e in published}
        done.update((f.event.org_id, f.event.id) for f in failures)
        released = [e for e in batch if (e.org_id, e.id) not in done]
        retries = [self.outbox.plan_retry(failure) for failure in failures]
        for retry in retries:
            log_failure(retry)
        return Outcome(published, retries, released)

    async def _settle_or_log(self, outcome: Outcome) -> None:
        try:
            await self.outbox.settle(outcome.published, outcome.retries, outcome.released)
        except Exception:
            logger.exception("could not settle a batch; its lease will expire")
        else:
            self._count(outcome)

    def _count(self, outcome: Outcome) -> None:
        retries = outcome.retries
        dead = sum(1 for r in retries if r.dead)
        transient = sum(1 for r in retries if r.failure.transient)
        self.stats.batches += 1
        self.stats.published += len(outcome.published)
        self.stats.dead += dead
        self.stats.retried += len(retries) - dead
        self.stats.transient += transient
        if self.metrics is not None:
            self.metrics.published.inc(len(outcome.published))
            self.metrics.dead_lettered.inc(dead)
            self.metrics.retries.inc(len(retries) - dead)
            self.metrics.transient_failures.inc(transient)

    def _batch_span(
        self, batch: Sequence[ClaimedEvent]
    ) -> contextlib.AbstractContextManager[BatchSpan | None]:
        if self.tracer is None:
            return contextlib.nullcontext()
        from tenancy.observability.tracing import relay_batch_span

        return relay_batch_span(self.tracer, batch)

    async def _refresh_gauges(self, metrics: RelayMetrics) -> None:
        admin = RelayAdmin(self.outbox.engine)
        while True:
            try:
                metrics.observe_outbox(await admin.gauges())
            except (DatabaseUnavailable, RetryableError) as exc:
                metrics.database_lost()
                logger.warning("could not read the outbox gauges: %s", exc)
            # Cancelled by run() when the relay stops.
            await asyncio.sleep(self.settings.metrics_interval)

    def healthy(self) -> bool:
        """Return whether the relay runs and its last look at the database succeeded."""
        if not self._running or self._stopped.is_set():
            return False
        return self.metrics is None or self.metrics.database_ok

    async def _delete_published(self) -> None:
        deleted = await self.outbox.delete_published()
        if deleted:
            logger.info("deleted %d published outbox rows past retention", deleted)

    async def _report_blocked(self) -> None:
        # Repeated on every maintenance pass: a stopped aggregate needs a person.
        for aggregate in await RelayAdmin(self.outbox.engine).blocked(_BLOCKED_REPORT):
            log_blocked(aggregate)

    def _back_off(self) -> float:
        settings = self.settings
        if self._backoff:
            self._backoff = min(self._backoff * 2, settings.backoff_max)
        else:
            self._backoff = settings.backoff_initial
        return self._backoff

    async def _pause(self, delay: float) -> None:
        # Only stop() ends a pause early: notifications must not defeat the back-off.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopped.wait()

    async def _idle(self) -> None:
        self.idle.set()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wake.wait()
        finally:
            self.idle.clear()


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
