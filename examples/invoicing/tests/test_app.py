"""The HTTP API: the middleware finds the Database the lifespan created."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from app import create_app
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tenancy import TenancySettings
from tenancy.web.auth_settings import AuthSettings
from tests.conftest import Tenant

SECRET = secrets.token_urlsafe(48)
AUDIENCE = "invoicing-api"


def token(user_id: uuid.UUID, org_id: uuid.UUID) -> dict[str, str]:
    """The Authorization header of ``user_id`` acting in ``org_id``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "org_id": str(org_id),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 60,
    }
    return {"authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


@pytest.fixture
def client(settings: TenancySettings) -> Iterator[TestClient]:
    """The app, its lifespan run (the Database is connected there, not when built)."""
    auth = AuthSettings(
        tenant_source="jwt",
        jwt_key=SecretStr(SECRET),
        jwt_algorithms=["HS256"],
        jwt_audience=AUDIENCE,
    )
    with TestClient(create_app(settings, auth)) as http:
        yield http


def _create(client: TestClient, tenant: Tenant, number: str = "INV-1") -> Any:
    body = {
        "customer_id": str(tenant.customer_id),
        "number": number,
        "currency": "EUR",
        "lines": [{"description": "hosting", "quantity": 2, "unit_amount": 1_250}],
    }
    return client.post("/invoices", json=body, headers=token(tenant.owner_id, tenant.org_id))


def test_a_member_creates_and_reads_an_invoice(client: TestClient, tenant_a: Tenant) -> None:
    created = _create(client, tenant_a)
    invoice_id = created.json()["id"]

    read = client.get(f"/invoices/{invoice_id}", headers=token(tenant_a.owner_id, tenant_a.org_id))

    assert created.status_code == 201
    assert read.json()["total"] == 2_500


def test_another_organizations_member_gets_a_404(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    invoice_id = _create(client, tenant_a).json()["id"]

    read = client.get(f"/invoices/{invoice_id}", headers=token(tenant_b.owner_id, tenant_b.org_id))

    assert read.status_code == 404


def test_a_caller_who_is_not_a_member_is_forbidden(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    response = client.get("/invoices", headers=token(tenant_b.owner_id, tenant_a.org_id))

    assert response.status_code == 403


def test_an_invoice_for_another_organizations_customer_is_a_problem_not_a_500(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    body = {
        "customer_id": str(tenant_b.customer_id),
        "number": "X-1",
        "currency": "EUR",
        "lines": [{"description": "x", "quantity": 1, "unit_amount": 1}],
    }
    response = client.post(
        "/invoices", json=body, headers=token(tenant_a.owner_id, tenant_a.org_id)
    )

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")
