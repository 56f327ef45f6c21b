"""The observers a ``Database`` gets from its settings (``TENANCY_TRACING``, ``_METRICS``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.observability.observer import Observers, UnitOfWorkObserver
from tenancy.settings import TenancySettings


def observers_for(settings: TenancySettings, engine: AsyncEngine) -> UnitOfWorkObserver | None:
    """Return the observers the settings switch on, or ``None`` (nothing to call).

    Raises:
        MissingExtra: tracing or metrics is on but its extra is not installed.
    """
    found: list[UnitOfWorkObserver] = []
    # Imported only when switched on: each needs its extra.
    if settings.tracing:
        from tenancy.observability.tracing import TracingObserver

        found.append(TracingObserver())
    if settings.metrics:
        from tenancy.observability.metrics import MetricsObserver, watch_pool

        watch_pool(engine)
        found.append(MetricsObserver(tenant_label=settings.metrics_tenant_label))
    if not found:
        return None
    return found[0] if len(found) == 1 else Observers(found)
