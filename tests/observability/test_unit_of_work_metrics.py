"""Unit-of-work and pool metrics on the default registry, against the real database."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from repositories import PlatformDatabase
from repositories.models import Customer
from tenancy import IsolationViolation, TenancySettings
from tenancy.observability.metrics import MetricsObserver, watch_pool
from tenancy.observability.observer import Observers
from tenancy.observability.tracing import TracingObserver


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metered(db: PlatformDatabase) -> PlatformDatabase:
    """The session's database, counted (no tenant label)."""
    return PlatformDatabase(db.engine, db.settings, observer=MetricsObserver())


async def test_a_committed_unit_of_work_is_timed_and_counted(
    metered: PlatformDatabase, org_a: uuid.UUID
) -> None:
    timed = _sample("tenancy_unit_of_work_seconds_count", outcome="commit")
    commits = _sample("tenancy_commits_total")
    events = _sample("tenancy_events_written_total")

    async with metered.unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@m.example"))
        await uow.commit()

    assert _sample("tenancy_unit_of_work_seconds_count", outcome="commit") == timed + 1
    assert _sample("tenancy_commits_total") == commits + 1
    assert _sample("tenancy_events_written_total") == events + 1


async def test_a_refusal_is_counted_by_error_class_and_sqlstate(
    metered: PlatformDatabase, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    labels = {"error": "IsolationViolation", "sqlstate": "42501"}
    before = _sample("tenancy_unit_of_work_errors_total", **labels)
    errors = _sample("tenancy_unit_of_work_seconds_count", outcome="error")

    with pytest.raises(IsolationViolation):
        async with metered.unit_of_work(org_a) as uow:
            uow.session.add(Customer(org_id=org_b, email=f"{uuid.uuid4().hex}@m.example"))
            await uow.commit()

    # Counted where commit failed and again as the error that left the block.
    assert _sample("tenancy_unit_of_work_errors_total", **labels) >= before + 1
    assert _sample("tenancy_unit_of_work_seconds_count", outcome="error") == errors + 1


async def test_the_pool_shows_the_connection_a_unit_of_work_holds(
    metered: PlatformDatabase, org_a: uuid.UUID
) -> None:
    watch_pool(metered.engine)
    pool = metered.engine.url.database or "default"
    idle = _sample("tenancy_pool_checked_out", pool=pool)

    async with metered.unit_of_work(org_a) as uow:
        await uow.customers.list()
        held = _sample("tenancy_pool_checked_out", pool=pool)

    assert held == idle + 1
    assert _sample("tenancy_pool_size", pool=pool) == metered.settings.pool_size
    assert _sample("tenancy_pool_wait_seconds_count") > 0


async def test_the_tenant_is_a_label_only_when_the_operator_opts_in(
    db: PlatformDatabase, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    plain = PlatformDatabase(db.engine, db.settings, observer=MetricsObserver())
    labelled = PlatformDatabase(db.engine, db.settings, observer=MetricsObserver(tenant_label=True))

    async with plain.unit_of_work(org_b) as uow:
        await uow.customers.list()
    async with labelled.unit_of_work(org_a) as uow:
        await uow.customers.list()

    assert _sample("tenancy_tenant_units_of_work_total", tenant=str(org_a), outcome="rollback") >= 1
    assert _sample("tenancy_tenant_units_of_work_total", tenant=str(org_b), outcome="rollback") == 0


def test_two_settings_switch_on_tracing_and_metrics(settings: TenancySettings) -> None:
    from tenancy.db.engine import create_engine

    engine = create_engine(settings)
    both = PlatformDatabase(engine, settings.model_copy(update={"tracing": True, "metrics": True}))
    neither = PlatformDatabase(engine, settings)

    assert isinstance(both.observer, Observers)
    assert {type(o) for o in both.observer.observers} == {TracingObserver, MetricsObserver}
    assert neither.observer is None
