"""Helpers of the fault suite: app-role settings, organizations, and checks as the superuser."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from repositories.models import Customer, Organization
from tenancy import Database, TenancySettings
from tenancy.settings import APP_ROLE
from tests.faults.server import FaultServer


@dataclass(frozen=True)
class FaultDatabase:
    """The migrated database on the fault server."""

    server: FaultServer
    name: str

    async def customer_counts(self, ids: Iterable[uuid.UUID]) -> Counter[uuid.UUID]:
        """Return how many ``customers`` rows each id has (all tenants; superuser)."""
        return await self._counts("SELECT id FROM customers WHERE id = ANY($1::uuid[])", ids)

    async def outbox_counts(self, ids: Iterable[uuid.UUID]) -> Counter[uuid.UUID]:
        """Return how many outbox events each aggregate id has (all tenants; superuser)."""
        return await self._counts(
            # aggregate_id is text (aggregates of any key type share the outbox).
            "SELECT aggregate_id::uuid FROM outbox_events WHERE aggregate_id = ANY($1::text[])",
            [str(i) for i in ids],
        )

    async def tenant_customer_count(self, org_id: uuid.UUID) -> int:
        """Return how many customers the table holds for ``org_id`` (superuser)."""
        connection = await self.server.connect(self.name)
        try:
            count: int = await connection.fetchval(
                "SELECT count(*) FROM customers WHERE org_id = $1", org_id
            )
        finally:
            await connection.close()
        return count

    async def _counts(self, query: str, ids: Iterable[object]) -> Counter[uuid.UUID]:
        connection = await self.server.connect(self.name)
        try:
            rows = await connection.fetch(query, list(ids))
        finally:
            await connection.close()
        return Counter(row[0] for row in rows)


def app_settings(fault_db: FaultDatabase, **overrides: Any) -> TenancySettings:
    """Settings that connect to ``fault_db`` as ``tenancy_app``, with ``overrides``."""
    admin = fault_db.server.url(fault_db.name).render_as_string(hide_password=False)
    base = TenancySettings(admin_database_url=admin, pool_size=2, max_overflow=0)
    app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    update: dict[str, Any] = {
        "database_url": app_url,
        "application_name": f"faults-{uuid.uuid4().hex[:12]}",
        **overrides,
    }
    return base.model_copy(update=update)


async def new_organization(db: Database, name: str = "org") -> uuid.UUID:
    """Create an organization (as its own tenant) and return its id."""
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name=name))
    return org_id


async def new_customers(db: Database, org_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """Commit ``count`` customers in ``org_id``; return their ids."""
    async with db.unit_of_work(org_id) as uow:
        ids = [(await uow.customers.add(customer())).id for _ in range(count)]
        await uow.commit()
    return ids


def customer(customer_id: uuid.UUID | None = None) -> Customer:
    """A new customer with a client-generated id and an email derived from it."""
    new_id = customer_id or uuid.uuid4()
    return Customer(id=new_id, email=f"{new_id.hex}@example.com")
