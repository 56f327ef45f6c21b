"""Publishing one claimed batch: in rounds, so no event overtakes an earlier one of its aggregate.

Inside a batch the events of one aggregate are sent in *rounds*: the n-th event
of an aggregate goes out only after its (n-1)-th was acknowledged, while
different aggregates share each round, so a batch costs one round trip per event
of its busiest aggregate. A failure therefore never lets a later event of the
same aggregate overtake an earlier one, even without an idempotent producer.

An event that fails stops its aggregate for the rest of the batch (its later
events are released, and the outbox keeps them blocked behind it). Broker errors
are transient unless known to be permanent (``tenancy.relay.kafka``); transient
ones are retried without using up attempts, after a back-off of their own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenancy.relay.claims import ClaimedEvent, Failure, Outcome, RelayOutbox
from tenancy.relay.log import log_failure
from tenancy.relay.message import to_message
from tenancy.relay.publisher import Message, Publisher, PublishError
from tenancy.relay.settings import RelaySettings

# Stop opening new rounds once this share of the lease is used: the rest of the
# batch is released rather than risk another relay claiming it mid-send.
LEASE_BUDGET = 0.8
# Per-aggregate memory of consecutive transient failures (for their back-off); an
# aggregate another relay took over is never cleared here, so the map is capped.
_TRANSIENT_MEMORY = 10_000

AggregateKey = tuple[uuid.UUID, str, str]


class Backoff:
    """The relay-wide back-off while the broker or the database is away; 0 when healthy."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        #: The current delay in seconds; 0.0 while healthy.
        self.delay = 0.0

    def grow(self) -> float:
        """Start at ``backoff_initial`` or double, up to ``backoff_max``; return the delay."""
        if self.delay:
            self.delay = min(self.delay * 2, self.settings.backoff_max)
        else:
            self.delay = self.settings.backoff_initial
        return self.delay

    def reset(self) -> None:
        """Healthy again: the next failure starts from ``backoff_initial``."""
        self.delay = 0.0


@dataclass
class Progress:
    """What a batch's sends came to so far: acknowledged events, and failures."""

    published: list[ClaimedEvent] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def outcome(self, batch: Sequence[ClaimedEvent], outbox: RelayOutbox) -> Outcome:
        """Plan (and log) the retries; every event neither sent nor failed is released."""
        done = {(e.org_id, e.id) for e in self.published}
        done.update((f.event.org_id, f.event.id) for f in self.failures)
        released = [e for e in batch if (e.org_id, e.id) not in done]
        retries = [outbox.plan_retry(failure) for failure in self.failures]
        for retry in retries:
            log_failure(retry)
        return Outcome(self.published, retries, released)


class BatchSender:
    """Sends claimed batches in per-aggregate rounds, within the share of the lease they may use."""

    def __init__(
        self,
        publisher: Publisher,
        settings: RelaySettings,
        *,
        send_timeout: float,
        backoff: Backoff,
        stopped: asyncio.Event,
    ) -> None:
        """Wire the sender; ``stopped`` set means open no further round."""
        self.publisher = publisher
        self.settings = settings
        self.send_timeout = send_timeout
        self.backoff = backoff
        self.stopped = stopped
        # Consecutive transient failures per aggregate: their retries back off too.
        self._transient: dict[AggregateKey, int] = {}

    async def send(self, batch: Sequence[ClaimedEvent], progress: Progress) -> None:
        """Publish ``batch`` round by round, recording each result in ``progress``.

        Returns early, with the rest unsent, when stopped or when another round
        might outlast the lease; ``progress`` is kept up to date if this raises.
        """
        chains: dict[AggregateKey, deque[ClaimedEvent]] = {}
        for event in batch:
            key = (event.org_id, event.aggregate_type, event.aggregate_id)
            chains.setdefault(key, deque()).append(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.lease_seconds * LEASE_BUDGET
        while chains and not self.stopped.is_set():
            if loop.time() + self.send_timeout > deadline:
                return  # what is left is released with the outcome
            heads: list[ClaimedEvent] = []
            messages: list[Message] = []
            for chain in chains.values():
                try:
                    messages.append(to_message(chain[0], self.settings.topic_prefix))
                except PublishError as exc:
                    progress.failures.append(Failure(chain[0], str(exc)))
                    chain.clear()  # its later events wait behind it (released, blocked)
                    continue
                heads.append(chain[0])
            results = await self.publisher.publish(messages) if messages else []
            self._round_done(heads, results, chains, progress)
            chains = {key: chain for key, chain in chains.items() if chain}

    def _round_done(
        self,
        heads: Sequence[ClaimedEvent],
        results: Sequence[PublishError | None],
        chains: dict[AggregateKey, deque[ClaimedEvent]],
        progress: Progress,
    ) -> None:
        # Nothing acknowledged and every error transient: the broker is away, and the
        # whole relay backs off (not only these events).
        outage = bool(results) and all(r is not None and r.retriable for r in results)
        delay = self.backoff.grow() if outage else 0.0
        if any(r is None for r in results):
            self.backoff.reset()
        if len(self._transient) > _TRANSIENT_MEMORY:
            self._transient.clear()
        for event, error in zip(heads, results, strict=True):
            key = (event.org_id, event.aggregate_type, event.aggregate_id)
            chain = chains[key]
            if error is None:
                progress.published.append(chain.popleft())
                self._transient.pop(key, None)
                continue
            # Whatever the error, the aggregate stops here: its later events must
            # not overtake this one (they are released, and blocked while it waits).
            chain.clear()
            if error.retriable:
                count = self._transient.get(key, 0) + 1
                self._transient[key] = count
                wait = max(delay, self.settings.backoff(count))
                progress.failures.append(Failure(event, str(error), transient=True, delay=wait))
            else:
                self._transient.pop(key, None)
                progress.failures.append(Failure(event, str(error)))
