"""The relay's loop: claim a batch, publish it, record the outcome; idle, pause, stop.

One pass claims a batch (see ``tenancy.relay.claims`` for why claims keep each
aggregate's order across relays), publishes it (``tenancy.relay.batch``), and
records the outcome. When more events are known to wait (the batch was full, or
a notification came in meanwhile), the outcome is recorded in the transaction
that claims the next batch, which follows at once: under load a batch costs one
transaction, not two, and an event committed during a pass waits that much less.

A failed event stops its aggregate, and the outbox keeps it stopped: while the
event backs off, and for good once it is dead-lettered, until an operator
re-queues or discards it (``tenancy relay requeue|discard``). Transient broker
errors cost no attempt, so a broker outage of any length dead-letters nothing;
while the broker or the database is away the whole relay backs off.

Rows are marked published only after the broker acknowledged them. A crash
leaves its rows leased until the lease runs out; cancellation and ``stop()``
release them at once. Either way a row is sent again, never lost: consumers
de-duplicate by event id (``EventConsumer`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Self

from tenancy.errors import ConfigurationError, DatabaseUnavailable, RetryableError
from tenancy.log import get_logger
from tenancy.relay.admin import RelayAdmin
from tenancy.relay.batch import LEASE_BUDGET, Backoff, BatchSender, Progress
from tenancy.relay.claims import ClaimedEvent, Outcome, RelayOutbox
from tenancy.relay.log import log_blocked
from tenancy.relay.notifications import Listener
from tenancy.relay.publisher import BrokerUnavailable, Publisher
from tenancy.relay.stats import RelayStats

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from tenancy.observability.tracing import BatchSpan
    from tenancy.relay.metrics import RelayMetrics

# The name the relay has always logged under (operators filter on it), kept when
# the loop moved out of tenancy.relay.worker.
logger = get_logger("tenancy.relay.worker")

# How many blocked aggregates one periodic report names in the log.
_BLOCKED_REPORT = 20


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
        if self.settings.lease_seconds * LEASE_BUDGET <= send_timeout:
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
        self._backoff = Backoff(self.settings)
        self._sender = BatchSender(
            publisher,
            self.settings,
            send_timeout=send_timeout,
            backoff=self._backoff,
            stopped=self._stopped,
        )

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
                    delay = self._backoff.grow()
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
                if self._backoff.delay:
                    await self._pause(self._backoff.delay)
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
            self.stats.count(unsettled, self.metrics)
        self.stats.claims += 1
        if not batch:
            self._backoff.reset()
            if self.metrics is not None:
                self.metrics.broker_reachable.set(1)
            return 0, None
        started = asyncio.get_running_loop().time()
        progress = Progress()
        with self._batch_span(batch) as span:
            try:
                await self._sender.send(batch, progress)
            except BaseException:
                # Cancelled (or broken) mid-batch: keep what was acknowledged and hand
                # the rest back now instead of when the lease runs out.
                await self._settle_or_log(progress.outcome(batch, self.outbox))
                raise
            if span is not None:
                span.outcome(len(progress.published), len(progress.failures))
        outcome = progress.outcome(batch, self.outbox)
        if self.metrics is not None:
            self.metrics.batch_seconds.observe(asyncio.get_running_loop().time() - started)
            # Away only if nothing was acknowledged and every failure was its absence.
            failures = progress.failures
            away = failures and not progress.published and all(f.transient for f in failures)
            self.metrics.broker_reachable.set(0 if away else 1)
        more = len(batch) >= self.settings.batch_size or self._wake.is_set()
        if chain and more and not self._backoff.delay and not self._stopped.is_set():
            return len(batch), outcome
        await self.outbox.settle(outcome.published, outcome.retries, outcome.released)
        self.stats.count(outcome, self.metrics)
        return len(batch), None

    async def _settle_or_log(self, outcome: Outcome) -> None:
        try:
            await self.outbox.settle(outcome.published, outcome.retries, outcome.released)
        except Exception:
            logger.exception("could not settle a batch; its lease will expire")
        else:
            self.stats.count(outcome, self.metrics)

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
