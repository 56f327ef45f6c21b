"""Refusals by the database are logged once, at WARNING, with tenant, operation and request."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import text

from repositories.models import Customer, PaymentMethod
from tenancy import Database, ForeignKeyViolation, IsolationViolation
from tenancy.context import operation, request_context


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tenancy.refusals"]


async def test_rls_refusal_is_logged_with_tenant_operation_and_request(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tenancy")
    with (
        request_context("req-42"),
        operation("import customers"),
        pytest.raises(IsolationViolation),
    ):
        async with db.unit_of_work(org_a) as uow:
            await uow.session.execute(
                text("INSERT INTO customers (org_id, email) VALUES (:org, 'x@y.z')"),
                {"org": org_b},
            )
    [record] = _refusals(caplog)
    assert record.levelno == logging.WARNING
    assert (record.org_id, record.operation, record.request_id) == (  # type: ignore[attr-defined]
        str(org_a),
        "import customers",
        "req-42",
    )


async def test_cross_tenant_reference_is_logged(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    async with db.unit_of_work(org_b) as uow:
        theirs = await uow.customers.add(Customer(email="theirs@example.com"))
        await uow.commit()
    caplog.set_level(logging.WARNING, logger="tenancy")
    with pytest.raises(ForeignKeyViolation):
        async with db.unit_of_work(org_a) as uow:
            uow.session.add(PaymentMethod(customer_id=theirs.id, type="card"))
            await uow.session.flush()
    assert [type(r.args[0]) for r in _refusals(caplog)] == [str]
    assert len(_refusals(caplog)) == 1
