"""Fixtures of the request suite: a FastAPI service, its own pool, and populated tenants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from repositories import PlatformDatabase
from repositories.models import Customer
from tenancy import Database, TenancySettings
from tests.middleware.echo import client_for
from tests.middleware.identities import create_member, create_org, jwt_settings, mint
from tests.requests.app import build_app


@dataclass
class Tenant:
    """An organization, one member's token, and the customers it owns."""

    org_id: uuid.UUID
    user_id: uuid.UUID
    token: str
    customers: set[uuid.UUID] = field(default_factory=set)


@pytest.fixture(scope="module")
async def service_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` for the service with a pool timeout long enough for bursts."""
    database = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": 5, "max_overflow": 5, "pool_timeout": 60.0})
    )
    yield database
    await database.dispose()


@pytest.fixture
async def tenants(service_db: Database) -> list[Tenant]:
    """Twelve organizations, each with a member and a few customers of its own."""
    population = []
    for index in range(12):
        org_id = await create_org(service_db, f"org-{index}")
        user_id = await create_member(service_db, org_id)
        tenant = Tenant(org_id, user_id, mint(sub=user_id, org=org_id, expires_in=3600))
        async with service_db.unit_of_work(org_id) as uow:
            for n in range(index % 4 + 1):
                added = await uow.customers.add(Customer(email=f"c{n}-{uuid.uuid4().hex}@x.test"))
                tenant.customers.add(added.id)
            await uow.commit()
        population.append(tenant)
    return population


@pytest.fixture
async def client(service_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the service, in process."""
    async with client_for(build_app(service_db, jwt_settings())) as http:
        yield http
