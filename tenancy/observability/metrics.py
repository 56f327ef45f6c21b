"""Prometheus metrics of units of work and the connection pool (the ``metrics`` extra).

Registered once per process on the default registry, which a service's own
``/metrics`` endpoint already exports: unit-of-work duration by outcome, errors
by class and SQLSTATE (refusals such as 42501 and cross-tenant 23503 among them),
the wait for a pooled connection, and the pools' checked-out and overflow
connections. The tenant is a label only on one counter, and only when the
operator opts in (``TENANCY_METRICS_TENANT_LABEL``): one series per tenant.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Iterator
from functools import cache

from tenancy.extras import missing_extra

try:
    from prometheus_client import REGISTRY, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("metrics", exc) from exc

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from tenancy.observability.errors import sqlstate_of
from tenancy.observability.observer import Observation


class UnitOfWorkSeries:
    """The series, created once per process (``unit_of_work_series()``)."""

    def __init__(self) -> None:
        self.duration = Histogram(
            "tenancy_unit_of_work_seconds",
            "Duration of a unit of work (the async with block), by outcome.",
            ["outcome"],
        )
        self.errors = Counter(
            "tenancy_unit_of_work_errors",
            "Errors raised in units of work, by error class and SQLSTATE.",
            ["error", "sqlstate"],
        )
        self.pool_wait = Histogram(
            "tenancy_pool_wait_seconds",
            "Wait for a pooled connection at the start of a unit of work.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.commits = Counter("tenancy_commits", "Transactions committed by units of work.")
        self.events = Counter("tenancy_events_written", "Domain events written to the outbox.")
        self.per_tenant = Counter(
            "tenancy_tenant_units_of_work",
            "Units of work per tenant and outcome (only with TENANCY_METRICS_TENANT_LABEL).",
            ["tenant", "outcome"],
        )


@cache
def unit_of_work_series() -> UnitOfWorkSeries:
    """Return the process's series (registered on the default registry at first use)."""
    return UnitOfWorkSeries()


class _MetricsObservation:
    def __init__(self, series: UnitOfWorkSeries, tenant: str | None) -> None:
        self._series = series
        self._tenant = tenant
        self._started = time.perf_counter()
        self._commits = 0
        self._failed = False

    def connection_acquired(self, waited: float) -> None:
        self._series.pool_wait.observe(waited)

    def committed(self, events: int) -> None:
        self._commits += 1
        self._series.commits.inc()
        self._series.events.inc(events)

    def failed(self, error: BaseException) -> None:
        self._failed = True
        self._count(error)

    def finished(self, error: BaseException | None) -> None:
        if error is not None:
            self._count(error)
        failed = error is not None or self._failed
        outcome = "error" if failed else ("commit" if self._commits else "rollback")
        self._series.duration.labels(outcome).observe(time.perf_counter() - self._started)
        if self._tenant is not None:
            self._series.per_tenant.labels(self._tenant, outcome).inc()

    def trace_context(self) -> str | None:
        return None

    def repository_call(self, repository: str, method: str) -> None:
        return None

    observes_repository_calls = False

    def _count(self, error: BaseException) -> None:
        self._series.errors.labels(type(error).__name__, sqlstate_of(error) or "none").inc()


class MetricsObserver:
    """Counts and times units of work on the default registry."""

    def __init__(self, *, tenant_label: bool = False) -> None:
        self._series = unit_of_work_series()
        self._tenant_label = tenant_label

    def started(self, org_id: uuid.UUID, isolation_level: str | None) -> Observation:
        """Start timing one unit of work."""
        return _MetricsObservation(self._series, str(org_id) if self._tenant_label else None)


class _PoolCollector(Collector):
    """Reads the watched engines' pools at scrape time (no events on the hot path)."""

    def __init__(self) -> None:
        self.engines: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out = GaugeMetricFamily(
            "tenancy_pool_checked_out", "Connections checked out of the pool.", labels=["pool"]
        )
        overflow = GaugeMetricFamily(
            "tenancy_pool_overflow", "Connections open beyond the pool size.", labels=["pool"]
        )
        size = GaugeMetricFamily("tenancy_pool_size", "Configured pool size.", labels=["pool"])
        for engine in list(self.engines):
            pool = engine.pool
            if not isinstance(pool, QueuePool):
                continue
            name = engine.url.database or "default"
            checked_out.add_metric([name], pool.checkedout())
            overflow.add_metric([name], max(pool.overflow(), 0))
            size.add_metric([name], pool.size())
        yield checked_out
        yield overflow
        yield size


@cache
def _pool_collector() -> _PoolCollector:
    collector = _PoolCollector()
    REGISTRY.register(collector)
    return collector


def watch_pool(engine: AsyncEngine) -> None:
    """Export ``engine``'s pool in ``tenancy_pool_*`` for as long as the engine lives."""
    _pool_collector().engines.add(engine)
