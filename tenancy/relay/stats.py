"""The relay's counters since it started, kept beside its Prometheus series when it has them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenancy.relay.claims import Outcome

if TYPE_CHECKING:
    from tenancy.relay.metrics import RelayMetrics


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

    def count(self, outcome: Outcome, metrics: RelayMetrics | None) -> None:
        """Count a batch whose outcome was recorded in the outbox (and in ``metrics``)."""
        retries = outcome.retries
        dead = sum(1 for r in retries if r.dead)
        transient = sum(1 for r in retries if r.failure.transient)
        self.batches += 1
        self.published += len(outcome.published)
        self.dead += dead
        self.retried += len(retries) - dead
        self.transient += transient
        if metrics is not None:
            metrics.published.inc(len(outcome.published))
            metrics.dead_lettered.inc(dead)
            metrics.retries.inc(len(retries) - dead)
            metrics.transient_failures.inc(transient)
