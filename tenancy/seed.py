"""Deterministic demo data for N organizations, written through the library as the app role.

Every organization is written in one tenant-scoped transaction (``db.session``),
so the database's row-level security checks each row exactly as it would for the
application. Ids are ``uuid5`` names and values come from ``random.Random`` seeded
with the organization's index, so the same N gives the same rows on any machine.

Re-running is idempotent: organization *i* always has the same id, and one that
already exists is reported as present and left alone. Because each organization
is one transaction, an existing organization is always complete.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from models import TENANT_TABLES, Base, Organization
from tenancy.database import Database
from tenancy.errors import InvalidData
from tenancy.seed_data import SEED_NAMESPACE, OrganizationData, build_organization, user_id
from tenancy.settings import TenancySettings

#: Tables counted per tenant after seeding, in the order they are written.
COUNTED_TABLES: tuple[str, ...] = ("organizations", "users", *TENANT_TABLES)


@dataclass(frozen=True)
class SeededOrganization:
    """One organization of a seed run and the rows its tenant sees afterwards."""

    org_id: uuid.UUID
    name: str
    created: bool
    rows: dict[str, int]


def organization_id(index: int) -> uuid.UUID:
    """Return the id the seed gives organization number ``index``."""
    return uuid.uuid5(SEED_NAMESPACE, f"organization-{index}")


async def seed(db: Database, organizations: int) -> list[SeededOrganization]:
    """Create organizations ``0 .. organizations - 1`` unless present; return what each holds.

    Organizations are written in index order: from the second one on, each also
    admits the previous organization's owner as a viewer (a person in several
    tenants), whose user row the previous organization created.

    Raises:
        InvalidData: ``organizations`` is less than 1.
        TenancyError: the database refused a row (translated from Postgres).
    """
    if organizations < 1:
        raise InvalidData("the number of organizations to seed must be at least 1")
    results = []
    for index in range(organizations):
        org_id = organization_id(index)
        data = build_organization(index, org_id)
        guest = user_id(index - 1, 0) if index else None
        created = await _write_unless_present(db, data, guest)
        rows = await count_rows(db, org_id)
        results.append(SeededOrganization(org_id, data.organization.name, created, rows))
    return results


async def seed_database(settings: TenancySettings, organizations: int) -> list[SeededOrganization]:
    """Connect as the app role of ``settings``, seed, and close the connections.

    Raises:
        UnsafeDatabaseRole: the app URL's role would bypass row-level security.
        TenancyError: as for ``seed``.
    """
    db = await Database.connect(settings)
    try:
        return await seed(db, organizations)
    finally:
        await db.dispose()


async def count_rows(db: Database, org_id: uuid.UUID) -> dict[str, int]:
    """Return, per table, how many rows tenant ``org_id`` can see (as the app role)."""
    counts = {}
    async with db.session(org_id) as session:
        for name in COUNTED_TABLES:
            table = Base.metadata.tables[name]
            counts[name] = (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
    return counts


async def _write_unless_present(
    db: Database, data: OrganizationData, guest_user_id: uuid.UUID | None
) -> bool:
    async with db.session(data.organization.id) as session:
        if await session.get(Organization, data.organization.id) is not None:
            return False
        # No relationships are mapped, so the unit of work does not order inserts
        # across models: each flush writes a layer whose parents are already in.
        for layer in data.layers(guest_user_id):
            session.add_all(layer)
            await session.flush()
    return True


def format_seed_report(results: list[SeededOrganization]) -> str:
    """Return one line per organization: created or present, and its row counts."""
    lines = []
    for result in results:
        status = "created" if result.created else "already present, left unchanged"
        counts = ", ".join(f"{table} {count}" for table, count in result.rows.items())
        lines.append(f"{result.name} ({result.org_id}): {status}\n    {counts}")
    return "\n".join(lines)
