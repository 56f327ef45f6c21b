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

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, text

from repositories.database import PlatformDatabase
from repositories.demo.seed_data import (
    SEED_NAMESPACE,
    GuestInvitation,
    OrganizationData,
    build_organization,
    user_id,
)
from repositories.models import (
    TENANT_TABLES,
    Base,
    Membership,
    MembershipStatus,
    Organization,
    User,
)
from tenancy.errors import InvalidData, translated
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


async def seed(db: PlatformDatabase, organizations: int) -> list[SeededOrganization]:
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
        guest_id = user_id(index - 1, 0) if index else None
        created = await _write_unless_present(db, data, guest_id)
        rows = await count_rows(db, org_id)
        results.append(SeededOrganization(org_id, data.organization.name, created, rows))
    return results


async def seed_database(settings: TenancySettings, organizations: int) -> list[SeededOrganization]:
    """Connect as the app role of ``settings``, seed, and close the connections.

    Raises:
        UnsafeDatabaseRole: the app URL's role would bypass row-level security.
        TenancyError: as for ``seed``.
    """
    db = await PlatformDatabase.connect(settings)
    try:
        return await seed(db, organizations)
    finally:
        await db.dispose()


async def count_rows(db: PlatformDatabase, org_id: uuid.UUID) -> dict[str, int]:
    """Return, per table, how many rows tenant ``org_id`` can see (as the app role)."""
    counts = {}
    async with db.session(org_id) as session:
        for name in COUNTED_TABLES:
            table = Base.metadata.tables[name]
            counts[name] = (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
    return counts


_ACCEPT = text("SELECT accept_invitation(:token, :user_id)")
_JOIN = text("SELECT public.join_organization(:user_id, :role, :joined_at)")
#: The user columns a tenant may write (no credentials, no global active flag).
_USER_COLUMNS = ("id", "email", "username", "display_name", "created_at")


async def _write_unless_present(
    db: PlatformDatabase, data: OrganizationData, guest_id: uuid.UUID | None
) -> bool:
    token = secrets.token_urlsafe(32)
    guest = None
    if guest_id is not None:
        expires_at = datetime.now(UTC) + timedelta(hours=1)
        guest = GuestInvitation(guest_id, hashlib.sha256(token.encode()).digest(), expires_at)
    async with db.session(data.organization.id) as session:
        if await session.get(Organization, data.organization.id) is not None:
            return False
        # No relationships are mapped, so the unit of work does not order inserts
        # across models: each flush writes a layer whose parents are already in.
        for layer in data.layers(guest):
            users = [row for row in layer if isinstance(row, User)]
            if users:
                # Core, granted columns only: the ORM would also send is_active.
                rows = [{c: getattr(u, c) for c in _USER_COLUMNS} for u in users]
                await session.execute(insert(User), rows)
            for member in layer:
                if isinstance(member, Membership) and _accepted(member):
                    # Accepted members join through the function that keeps member_of.
                    params = {
                        "user_id": member.user_id,
                        "role": member.role,
                        "joined_at": member.created_at,
                    }
                    await session.execute(_JOIN, params)
            session.add_all(
                [row for row in layer if not isinstance(row, User) and not _accepted(row)]
            )
            await session.flush()
    if guest is not None:
        await _accept_as_guest(db, token, guest.user_id)
    return True


def _accepted(row: object) -> bool:
    return isinstance(row, Membership) and row.status != MembershipStatus.PENDING.value


async def _accept_as_guest(db: PlatformDatabase, token: str, guest_id: uuid.UUID) -> None:
    # What the guest would do after reading the invitation: accept it, without a tenant.
    with translated():
        async with db.engine.begin() as connection:
            await connection.execute(_ACCEPT, {"token": token, "user_id": guest_id})


def format_seed_report(results: list[SeededOrganization]) -> str:
    """Return one line per organization: created or present, and its row counts."""
    lines = []
    for result in results:
        status = "created" if result.created else "already present, left unchanged"
        counts = ", ".join(f"{table} {count}" for table, count in result.rows.items())
        lines.append(f"{result.name} ({result.org_id}): {status}\n    {counts}")
    return "\n".join(lines)
