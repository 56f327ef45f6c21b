"""Refused requests and isolation violations answer with problems and are logged at WARNING."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import event

from repositories.models import Customer
from tenancy import Database
from tenancy.specification import Specification
from tests.middleware.identities import bearer, mint
from tests.middleware.logs import warnings_of
from tests.requests.conftest import Tenant

pytestmark = pytest.mark.security

TokenFactory = Callable[[Tenant, Tenant], str]

#: Each way of asking for data one may not have (a token of ``me`` against ``them``),
#: the status that refuses it, and whose organization the log names ("-": none).
REFUSED: dict[str, tuple[TokenFactory, int, str]] = {
    "forged_signature": (
        lambda me, them: mint(sub=me.user_id, org=them.org_id, key="q" * 64),
        401,
        "them",
    ),
    "expired": (lambda me, them: mint(sub=me.user_id, org=me.org_id, expires_in=-1), 401, "me"),
    "wrong_audience": (
        lambda me, them: mint(sub=me.user_id, org=me.org_id, aud="ledger"),
        401,
        "me",
    ),
    "foreign_org": (lambda me, them: mint(sub=me.user_id, org=them.org_id), 403, "them"),
    "malformed_org": (lambda me, them: mint(sub=me.user_id, org="not-an-org"), 400, "-"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_token_gets_its_status_and_a_problem_document(
    case: str, client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    factory, status, _ = REFUSED[case]
    response = await client.get("/customers", headers=bearer(factory(tenants[0], tenants[1])))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_refused_request_is_logged_with_tenant_operation_and_request_id(
    case: str,
    client: httpx.AsyncClient,
    tenants: list[Tenant],
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory, status, logged = REFUSED[case]
    me, them = tenants[0], tenants[1]
    headers = {**bearer(factory(me, them)), "x-request-id": f"rid-{case}"}
    with caplog.at_level(logging.WARNING, logger="tenancy"):
        await client.get("/customers", headers=headers)
    [record] = warnings_of(caplog.records, "tenancy.web.middleware")
    assert record["operation"] == "GET /customers"
    assert record["request_id"] == f"rid-{case}"
    assert record["status"] == status
    assert record["org_id"] == {"me": str(me.org_id), "them": str(them.org_id), "-": "-"}[logged]


async def test_isolation_violation_answers_403_problem(
    client: httpx.AsyncClient, tenants: list[Tenant]
) -> None:
    me, them = tenants[0], tenants[1]
    response = await client.post(f"/bugs/customers-for/{them.org_id}", headers=bearer(me.token))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:tenancy:problem:isolation-violation"


async def test_isolation_violation_is_logged_at_warning_with_tenant_operation_and_request_id(
    client: httpx.AsyncClient, tenants: list[Tenant], caplog: pytest.LogCaptureFixture
) -> None:
    me, them = tenants[0], tenants[1]
    headers = {**bearer(me.token), "x-request-id": "rid-42501"}
    with caplog.at_level(logging.WARNING, logger="tenancy"):
        await client.post(f"/bugs/customers-for/{them.org_id}", headers=headers)
    [record] = warnings_of(caplog.records, "tenancy.refusals")
    assert "IsolationViolation" in record["message"]
    assert record["org_id"] == str(me.org_id)
    assert record["operation"] == f"POST /bugs/customers-for/{them.org_id}"
    assert record["request_id"] == "rid-42501"


async def test_isolation_violation_writes_nothing_into_the_other_tenant(
    client: httpx.AsyncClient, service_db: Database, tenants: list[Tenant]
) -> None:
    me, them = tenants[0], tenants[1]
    await client.post(f"/bugs/customers-for/{them.org_id}", headers=bearer(me.token))
    async with service_db.unit_of_work(them.org_id) as uow:
        spec = Specification[Customer](Customer.email == "bug@example.com")
        assert await uow.customers.count(spec) == 0


async def test_reference_to_another_tenants_row_is_refused_and_logged_at_warning(
    client: httpx.AsyncClient, tenants: list[Tenant], caplog: pytest.LogCaptureFixture
) -> None:
    me, them = tenants[0], tenants[1]
    theirs = next(iter(them.customers))
    headers = {**bearer(me.token), "x-request-id": "rid-fk"}
    with caplog.at_level(logging.WARNING, logger="tenancy"):
        response = await client.post(f"/customers/{theirs}/payment-methods", headers=headers)
    assert response.status_code == 422
    [record] = warnings_of(caplog.records, "tenancy.refusals")
    assert (record["org_id"], record["request_id"]) == (str(me.org_id), "rid-fk")
    assert str(them.org_id) not in response.text


async def test_route_without_credentials_never_reaches_the_database(
    client: httpx.AsyncClient, service_db: Database
) -> None:
    checkouts: list[object] = []

    def on_checkout(*args: object) -> None:
        checkouts.append(args)

    pool = service_db.engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        response = await client.get(f"/customers/{uuid.uuid4()}")
    finally:
        event.remove(pool, "checkout", on_checkout)
    assert response.status_code == 401
    assert checkouts == []
