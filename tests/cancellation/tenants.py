"""Two seeded tenants: B, whose units of work get cancelled, and A, who checks what it sees.

A's check is the suite's one oracle. In one unit of work on the same pool A reads
its tenant setting, its customers (through the repository, by raw SQL on the
unit of work's Core connection, and counted) and its users, adds a customer and
commits. Afterwards the new customer must be visible to a fresh unit of work of
A and, as the superuser sees the table, A must hold exactly what it committed.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.models import Customer, User
from tenancy import Database

#: A's whole check is bounded, so a connection left hanging fails one attempt, not the run.
CHECK_TIMEOUT_S = 5.0

SETTING = text("SELECT current_setting('app.org_id', true)")
CUSTOMER_IDS = text("SELECT id FROM customers")
OWNED_CUSTOMER_IDS = text("SELECT id FROM customers WHERE org_id = :org_id")


@dataclass(frozen=True)
class Tenant:
    """An organization with two members and some customers."""

    org_id: uuid.UUID
    customer_ids: frozenset[uuid.UUID]
    member_ids: frozenset[uuid.UUID]


def new_customer(label: str) -> Customer:
    """Return a new, unsaved customer with a unique email."""
    return Customer(name=label, email=f"{label}-{secrets.token_hex(6)}@example.com")


def _new_user(label: str) -> User:
    tag = secrets.token_hex(6)
    return User(email=f"{label}-{tag}@example.com", username=f"{label}-{tag}")


async def seed_tenant(db: Database, label: str, customers: int = 3) -> Tenant:
    """Create an organization with an owner, a member and ``customers`` customers."""
    org_id = uuid.uuid4()
    owner, member = _new_user(label), _new_user(label)
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.create(label, owner)
        await uow.organizations.register_member(member)
        added = [await uow.customers.add(new_customer(label)) for _ in range(customers)]
        await uow.commit()
    return Tenant(
        org_id,
        frozenset(c.id for c in added),
        frozenset({owner.id, member.id}),
    )


@dataclass(frozen=True)
class View:
    """What a unit of work of one tenant saw."""

    setting: str | None
    customer_ids: frozenset[uuid.UUID]
    raw_customer_ids: frozenset[uuid.UUID]
    count: int
    user_ids: frozenset[uuid.UUID]


@dataclass
class Witness:
    """Tenant A: the customers it has committed so far, and the check of what it sees."""

    tenant: Tenant
    superuser: AsyncEngine
    committed: set[uuid.UUID] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.committed |= self.tenant.customer_ids

    @property
    def expected(self) -> View:
        """Return the view A must have: its own setting, customers and users."""
        ids = frozenset(self.committed)
        return View(str(self.tenant.org_id), ids, ids, len(ids), self.tenant.member_ids)

    async def problem(self, db: Database) -> str | None:
        """Run A's check on ``db``; return what went wrong, or ``None``."""
        problems: list[str] = []
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await self._check(db, problems)
        except Exception as exc:  # any error is a finding, reported by its type
            problems.append(f"A's unit of work raised {type(exc).__name__}: {exc}"[:200])
        return "; ".join(problems) or None

    async def resync(self) -> None:
        """Take what the table holds as A's committed customers (after a reported problem)."""
        self.committed = await stored_customer_ids(self.superuser, self.tenant.org_id)

    async def _check(self, db: Database, problems: list[str]) -> None:
        org_id = self.tenant.org_id
        async with db.unit_of_work(org_id) as uow:
            core = uow.connection()
            seen = View(
                (await core.execute(SETTING)).scalar_one(),
                frozenset(c.id for c in await uow.customers.list()),
                frozenset((await core.execute(CUSTOMER_IDS)).scalars()),
                await uow.customers.count(),
                frozenset(u.id for u in await uow.users.list()),
            )
            if seen != self.expected:
                problems.append("A saw " + ", ".join(differences(seen, self.expected)))
            # Whatever A saw, a commit that returns must persist.
            added = await uow.customers.add(new_customer("a"))
            await uow.commit()
        self.committed.add(added.id)
        async with db.unit_of_work(org_id) as uow:
            if await uow.customers.get_or_none(added.id) is None:
                problems.append("A's acknowledged commit is not visible to its next unit of work")
        stored = await stored_customer_ids(self.superuser, org_id)
        if stored != self.committed:
            problems.append(
                f"the table holds {len(stored & self.committed)} of the {len(self.committed)} "
                f"customers A committed, and {len(stored - self.committed)} others"
            )


def differences(seen: View, expected: View) -> list[str]:
    """Describe how ``seen`` differs from ``expected``, briefly."""
    found = []
    if seen.setting != expected.setting:
        found.append("another tenant's app.org_id" if seen.setting else "no app.org_id")
    for name in ("customer_ids", "raw_customer_ids", "user_ids"):
        mine, got = getattr(expected, name), getattr(seen, name)
        if got != mine:
            found.append(
                f"{name} {len(got & mine)} of its {len(mine)} and {len(got - mine)} others"
            )
    if seen.count != expected.count:
        found.append(f"count {seen.count} instead of {expected.count}")
    return found


async def stored_customer_ids(superuser: AsyncEngine, org_id: uuid.UUID) -> set[uuid.UUID]:
    """Return the ids of ``org_id``'s customers as the superuser sees the table."""
    async with superuser.connect() as connection:
        result = await connection.execute(OWNED_CUSTOMER_IDS, {"org_id": org_id})
        return set(result.scalars())
