"""Prometheus metrics of the relay and the outbox it drains (the ``metrics`` extra).

Counters move as the relay publishes, retries and dead-letters; the outbox gauges
(backlog, the age of the oldest pending event, dead events, blocked aggregates)
are read from the database by the relay every ``metrics_interval`` seconds, so a
scrape never waits on the database. The tenant is never a label: one series
per organization would grow without bound.

Prometheus rather than OpenTelemetry metrics: an operator scrapes the relay
directly, with no collector to run, and the text format is what Grafana and
every alerting stack already read.
"""

from __future__ import annotations

from tenancy.extras import missing_extra

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("metrics", exc) from exc

from tenancy.relay.admin import OutboxGauges


class RelayMetrics:
    """The relay's series, registered on ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.published = Counter(
            "tenancy_relay_published", "Events acknowledged by the broker.", registry=reg
        )
        self.retries = Counter(
            "tenancy_relay_retries", "Failed sends that will be retried.", registry=reg
        )
        self.transient_failures = Counter(
            "tenancy_relay_transient_failures",
            "Failed sends that used up no attempt (broker away or restarting).",
            registry=reg,
        )
        self.dead_lettered = Counter(
            "tenancy_relay_dead_lettered", "Events that became dead letters.", registry=reg
        )
        self.pauses = Counter(
            "tenancy_relay_pauses",
            "Passes that found the broker or the database away.",
            registry=reg,
        )
        self.batch_seconds = Histogram(
            "tenancy_relay_batch_seconds",
            "Time to publish one non-empty batch, until each event is acknowledged or failed.",
            registry=reg,
        )
        self.backlog = Gauge(
            "tenancy_outbox_backlog", "Committed events not yet published.", registry=reg
        )
        self.lag_seconds = Gauge(
            "tenancy_outbox_lag_seconds",
            "Age of the oldest unpublished event (0 when none).",
            registry=reg,
        )
        self.dead = Gauge("tenancy_outbox_dead", "Dead events now in the outbox.", registry=reg)
        self.blocked_aggregates = Gauge(
            "tenancy_outbox_blocked_aggregates",
            "Aggregates whose events wait behind a dead one.",
            registry=reg,
        )
        self.broker_reachable = Gauge(
            "tenancy_relay_broker_reachable",
            "1 when the last pass reached the broker, 0 when it found it away.",
            registry=reg,
        )
        self.database_reachable = Gauge(
            "tenancy_relay_database_reachable",
            "1 when the last refresh of the outbox gauges reached the database.",
            registry=reg,
        )

        #: Whether the last refresh reached the database (what /healthz reports).
        self.database_ok = False

    def observe_outbox(self, gauges: OutboxGauges) -> None:
        """Set the outbox gauges from one reading."""
        self.backlog.set(gauges.backlog)
        self.lag_seconds.set(gauges.lag_seconds)
        self.dead.set(gauges.dead)
        self.blocked_aggregates.set(gauges.blocked_aggregates)
        self.database_reachable.set(1)
        self.database_ok = True

    def database_lost(self) -> None:
        """Record that a refresh could not reach the database (the gauges keep their values)."""
        self.database_reachable.set(0)
        self.database_ok = False
