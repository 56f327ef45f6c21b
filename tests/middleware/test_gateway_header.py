"""Opt-in gateway mode: the organization and user come from headers a trusted gateway set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tenancy import Database
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.conftest import Checkouts
from tests.middleware.echo import client_for, echo_app
from tests.middleware.identities import jwt_settings


@pytest.fixture
async def gateway_client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the echo app behind the middleware in gateway-header mode."""
    settings = jwt_settings(tenant_source="gateway-header", jwt_key=None, jwt_audience=None)
    app = TenantMiddleware(echo_app, settings=settings, membership=UnitOfWorkMembershipCheck(db))
    async with client_for(app) as http:
        yield http


def gateway(org: object, user: object) -> dict[str, str]:
    """Return the headers the gateway would set."""
    return {"x-tenant-id": str(org), "x-user-id": str(user)}


async def test_gateway_headers_of_a_member_bind_the_organization(
    gateway_client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    response = await gateway_client.get("/me", headers=gateway(org_a, member))
    assert response.status_code == 200
    assert response.json()["tenant"] == str(org_a)


async def test_bearer_token_is_not_consulted_in_gateway_mode(
    gateway_client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    response = await gateway_client.get("/me", headers={"authorization": "Bearer whatever"})
    assert response.status_code == 400


@pytest.mark.security
async def test_missing_tenant_header_is_refused_400_without_touching_the_database(
    gateway_client: httpx.AsyncClient, member: uuid.UUID, checkouts: Checkouts
) -> None:
    response = await gateway_client.get("/me", headers={"x-user-id": str(member)})
    assert response.status_code == 400
    assert checkouts.count == 0


@pytest.mark.security
async def test_malformed_tenant_header_is_refused_400_without_touching_the_database(
    gateway_client: httpx.AsyncClient, member: uuid.UUID, checkouts: Checkouts
) -> None:
    response = await gateway_client.get("/me", headers=gateway("' OR 1=1 --", member))
    assert response.status_code == 400
    assert checkouts.count == 0


@pytest.mark.security
async def test_repeated_tenant_header_is_refused_400(
    gateway_client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    headers = [("x-tenant-id", str(org_a)), ("x-tenant-id", str(org_b)), ("x-user-id", str(member))]
    response = await gateway_client.get("/me", headers=headers)
    assert response.status_code == 400


@pytest.mark.security
async def test_missing_user_header_is_refused_401(
    gateway_client: httpx.AsyncClient, org_a: uuid.UUID, checkouts: Checkouts
) -> None:
    response = await gateway_client.get("/me", headers={"x-tenant-id": str(org_a)})
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers
    assert checkouts.count == 0


@pytest.mark.security
async def test_gateway_headers_naming_a_foreign_organization_are_refused_403(
    gateway_client: httpx.AsyncClient, member: uuid.UUID, org_b: uuid.UUID
) -> None:
    response = await gateway_client.get("/me", headers=gateway(org_b, member))
    assert response.status_code == 403
