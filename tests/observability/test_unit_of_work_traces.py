"""A span per unit of work: tenant, outcome, error class and SQLSTATE; statements nest in it."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from repositories import PlatformDatabase
from repositories.models import Customer, PaymentMethod
from tenancy import ForeignKeyViolation, IsolationViolation
from tenancy.observability.tracing import SPAN_NAME

#: Every attribute the span may carry: no values, no messages.
ALLOWED = {
    "tenant.id",
    "db.system",
    "tenancy.isolation_level",
    "tenancy.pool.wait_seconds",
    "tenancy.outcome",
    "tenancy.commits",
    "tenancy.events_written",
    "error.type",
    "db.response.status_code",
}


def _spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == SPAN_NAME]


async def test_a_committed_unit_of_work_is_one_span_with_its_tenant_and_outcome(
    traced: PlatformDatabase, org_a: uuid.UUID, exporter: InMemorySpanExporter
) -> None:
    async with traced.unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(name="Traced", email=f"{uuid.uuid4().hex}@t.example"))
        await uow.commit()

    [span] = _spans(exporter)
    assert span.attributes is not None
    assert span.attributes["tenant.id"] == str(org_a)
    assert span.attributes["tenancy.outcome"] == "commit"
    assert span.attributes["tenancy.commits"] == 1
    assert span.attributes["tenancy.events_written"] == 1
    assert set(span.attributes) <= ALLOWED


async def test_a_block_left_without_commit_is_labelled_rollback(
    traced: PlatformDatabase, org_a: uuid.UUID, exporter: InMemorySpanExporter
) -> None:
    async with traced.unit_of_work(org_a) as uow:
        await uow.customers.list()

    [span] = _spans(exporter)
    assert span.attributes is not None
    assert span.attributes["tenancy.outcome"] == "rollback"
    assert span.status.status_code is not StatusCode.ERROR


async def test_a_write_into_another_tenant_is_an_error_span_with_its_sqlstate(
    traced: PlatformDatabase, org_a: uuid.UUID, org_b: uuid.UUID, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(IsolationViolation):
        async with traced.unit_of_work(org_a) as uow:
            uow.session.add(Customer(org_id=org_b, email=f"{uuid.uuid4().hex}@t.example"))
            await uow.commit()

    [span] = _spans(exporter)
    assert span.attributes is not None
    assert span.attributes["tenancy.outcome"] == "error"
    assert span.attributes["error.type"] == "IsolationViolation"
    assert span.attributes["db.response.status_code"] == "42501"
    assert span.status.status_code is StatusCode.ERROR
    assert set(span.attributes) <= ALLOWED


async def test_a_reference_to_another_tenants_row_is_labelled_with_its_sqlstate(
    traced: PlatformDatabase, org_a: uuid.UUID, org_b: uuid.UUID, exporter: InMemorySpanExporter
) -> None:
    async with traced.unit_of_work(org_b) as uow:
        theirs = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@t.example"))
        await uow.commit()
    exporter.clear()

    with pytest.raises(ForeignKeyViolation):
        async with traced.unit_of_work(org_a) as uow:
            uow.session.add(PaymentMethod(customer_id=theirs.id, type="card"))
            await uow.commit()

    [span] = _spans(exporter)
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ForeignKeyViolation"
    assert span.attributes["db.response.status_code"] == "23503"


async def test_spans_started_inside_the_block_are_its_children(
    traced: PlatformDatabase,
    provider: TracerProvider,
    org_a: uuid.UUID,
    exporter: InMemorySpanExporter,
) -> None:
    # What the SQLAlchemy or asyncpg instrumentation does for each statement.
    async with traced.unit_of_work(org_a) as uow:
        with provider.get_tracer("statements").start_as_current_span("SELECT customers"):
            await uow.customers.list()

    [parent] = _spans(exporter)
    [child] = [s for s in exporter.get_finished_spans() if s.name == "SELECT customers"]
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


async def test_the_asyncpg_instrumentation_spans_each_statement_inside_the_unit_of_work(
    traced: PlatformDatabase,
    provider: TracerProvider,
    org_a: uuid.UUID,
    exporter: InMemorySpanExporter,
) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        async with traced.unit_of_work(org_a) as uow:
            await uow.customers.list()
    finally:
        instrumentor.uninstrument()

    [parent] = _spans(exporter)
    spans = exporter.get_finished_spans()
    calls = {s.context.span_id for s in spans if s.name.startswith("tenancy.repository")}
    statements = [s for s in spans if s.name != SPAN_NAME and s.context.span_id not in calls]
    assert statements
    # Each statement once, inside the unit of work (directly, or in a repository call).
    assert all(s.context.trace_id == parent.context.trace_id for s in statements)
    assert {s.parent.span_id for s in statements if s.parent} <= {parent.context.span_id, *calls}
    assert len({s.context.span_id for s in statements}) == len(statements)


async def test_each_repository_call_is_a_child_span_of_the_unit_of_work(
    traced: PlatformDatabase, org_a: uuid.UUID, exporter: InMemorySpanExporter
) -> None:
    async with traced.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@t.example"))
        await uow.customers.get(customer.id)
        await uow.commit()

    [parent] = _spans(exporter)
    calls = [s for s in exporter.get_finished_spans() if s.name.startswith("tenancy.repository")]
    assert [s.name for s in calls] == [
        "tenancy.repository customers.add",
        "tenancy.repository customers.get",
    ]
    assert all(s.parent is not None and s.parent.span_id == parent.context.span_id for s in calls)


async def test_the_unit_of_work_span_is_a_child_of_the_requests_span(
    traced: PlatformDatabase,
    provider: TracerProvider,
    org_a: uuid.UUID,
    exporter: InMemorySpanExporter,
) -> None:
    # What an HTTP server instrumentation (FastAPI, ASGI) has current in the endpoint.
    with provider.get_tracer("http").start_as_current_span("GET /customers"):
        async with traced.unit_of_work(org_a) as uow:
            await uow.customers.list()

    [request] = [s for s in exporter.get_finished_spans() if s.name == "GET /customers"]
    [unit] = _spans(exporter)
    assert unit.parent is not None
    assert unit.parent.span_id == request.context.span_id
    assert unit.context.trace_id == request.context.trace_id


async def test_untraced_repositories_are_not_wrapped(
    db: PlatformDatabase, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        assert "get" not in vars(uow.customers)
