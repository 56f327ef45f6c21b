"""The FastAPI dependency: a unit of work for the verified tenant, failing closed without one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from repositories.models import Customer
from tenancy import Database
from tenancy.specification import Specification
from tenancy.web.fastapi import DATABASE_STATE_KEY, TenantUnitOfWork, install_problem_handlers
from tenancy.web.membership import UnitOfWorkMembershipCheck
from tenancy.web.middleware import TenantMiddleware
from tests.middleware.echo import client_for
from tests.middleware.identities import bearer, jwt_settings, mint


def service(db: Database | None, *, with_middleware: bool = True) -> FastAPI:
    """Return an app whose endpoints use the unit-of-work dependency."""
    app = FastAPI()
    if db is not None:
        setattr(app.state, DATABASE_STATE_KEY, db)
    install_problem_handlers(app)
    if with_middleware and db is not None:
        app.add_middleware(
            TenantMiddleware, settings=jwt_settings(), membership=UnitOfWorkMembershipCheck(db)
        )

    @app.get("/tenant")
    async def tenant(uow: TenantUnitOfWork) -> dict[str, str]:
        return {"org_id": str(uow.org_id)}

    @app.post("/customers/uncommitted")
    async def uncommitted(uow: TenantUnitOfWork) -> dict[str, str]:
        await uow.customers.add(Customer(email="uncommitted@x.test"))
        return {"status": "added, not committed"}

    return app


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the service behind the middleware."""
    async with client_for(service(db)) as http:
        yield http


async def test_unit_of_work_is_for_the_verified_tenant(
    client: httpx.AsyncClient, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    response = await client.get("/tenant", headers=bearer(mint(sub=member, org=org_a)))
    assert response.json() == {"org_id": str(org_a)}


async def test_work_not_committed_by_the_endpoint_is_rolled_back(
    client: httpx.AsyncClient, db: Database, member: uuid.UUID, org_a: uuid.UUID
) -> None:
    response = await client.post(
        "/customers/uncommitted", headers=bearer(mint(sub=member, org=org_a))
    )
    assert response.status_code == 200
    async with db.unit_of_work(org_a) as uow:
        spec = Specification[Customer](Customer.email == "uncommitted@x.test")
        assert await uow.customers.count(spec) == 0


@pytest.mark.security
async def test_route_outside_the_middleware_refuses_to_open_a_unit_of_work(
    db: Database,
) -> None:
    async with client_for(service(db, with_middleware=False)) as http:
        response = await http.get("/tenant")
    assert response.status_code == 500
    assert response.json()["type"] == "urn:tenancy:problem:tenant-context"


async def test_missing_database_is_a_configuration_error(
    member: uuid.UUID, org_a: uuid.UUID, db: Database
) -> None:
    app = service(None)
    app.add_middleware(
        TenantMiddleware, settings=jwt_settings(), membership=UnitOfWorkMembershipCheck(db)
    )
    async with client_for(app) as http:
        response = await http.get("/tenant", headers=bearer(mint(sub=member, org=org_a)))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
