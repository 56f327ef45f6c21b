"""Users are global identities, visible inside a tenant only through a membership of it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, insert, select, text

from repositories.models import Membership, User
from tenancy import Conflict, Database, InvalidData, IsolationViolation
from tests.core.tenant_graph import Tenants

pytestmark = pytest.mark.security


def _new_user() -> dict[str, object]:
    tag = uuid.uuid4().hex
    return {"id": uuid.uuid4(), "email": f"{tag}@example.com", "username": f"user_{tag}"}


_JOIN = text("SELECT public.join_organization(:user_id, 'member')")
_REMOVE = text("SELECT public.remove_membership(:user_id)")


async def _visible_users(db: Database, org_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.session(org_id) as session:
        return set((await session.execute(select(User.id))).scalars())


async def test_registered_user_is_invisible_until_a_membership_exists(
    db: Database, tenants: Tenants
) -> None:
    user = _new_user()

    async with db.session(tenants.a.org_id) as session:
        await session.execute(insert(User).values(user))

    assert user["id"] not in await _visible_users(db, tenants.a.org_id)


async def test_the_creating_tenant_sees_its_new_member(db: Database, tenants: Tenants) -> None:
    user = _new_user()
    async with db.session(tenants.a.org_id) as session:
        await session.execute(insert(User).values(user))
        await session.execute(_JOIN, {"user_id": user["id"]})

    assert user["id"] in await _visible_users(db, tenants.a.org_id)


async def test_a_tenant_cannot_insert_an_accepted_membership_itself(
    db: Database, tenants: Tenants
) -> None:
    user = _new_user()

    # Only join_organization accepts one, with the user's member_of (consent_insert).
    with pytest.raises(IsolationViolation):
        async with db.session(tenants.a.org_id) as session:
            await session.execute(insert(User).values(user))
            await session.execute(insert(Membership).values(user_id=user["id"], role="member"))
    assert user["id"] not in await _visible_users(db, tenants.a.org_id)


async def test_another_tenant_cannot_make_that_user_its_member(
    db: Database, tenants: Tenants
) -> None:
    user = _new_user()
    async with db.session(tenants.a.org_id) as session:
        await session.execute(insert(User).values(user))
        await session.execute(_JOIN, {"user_id": user["id"]})

    # Without an invitation the user accepted, the database refuses.
    with pytest.raises(IsolationViolation):
        async with db.session(tenants.b.org_id) as session:
            await session.execute(_JOIN, {"user_id": user["id"]})
    assert user["id"] not in await _visible_users(db, tenants.b.org_id)


async def test_a_pending_membership_shows_nothing(db: Database, tenants: Tenants) -> None:
    user_id = tenants.b.id("users")
    async with db.session(tenants.a.org_id) as session:
        await session.execute(
            insert(Membership).values(user_id=user_id, role="member", status="pending")
        )

    assert user_id not in await _visible_users(db, tenants.a.org_id)


async def test_removing_the_membership_hides_the_user_again(db: Database, tenants: Tenants) -> None:
    user_id = tenants.a.id("users")

    async with db.session(tenants.a.org_id) as session:
        await session.execute(_REMOVE, {"user_id": user_id})

    assert user_id not in await _visible_users(db, tenants.a.org_id)


async def test_a_tenant_cannot_delete_an_accepted_membership_itself(
    db: Database, tenants: Tenants
) -> None:
    user_id = tenants.a.id("users")

    async with db.session(tenants.a.org_id) as session:
        result = await session.execute(delete(Membership).where(Membership.user_id == user_id))

    # consent_delete: the row is not there for a tenant's DELETE; the user stays a member.
    assert result.rowcount == 0
    assert user_id in await _visible_users(db, tenants.a.org_id)


async def test_no_tenant_reads_the_organizations_a_user_belongs_to(
    db: Database, tenants: Tenants
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(tenants.a.org_id) as session:
            await session.execute(text("SELECT member_of FROM users"))


async def test_email_is_unique_across_all_tenants(db: Database, tenants: Tenants) -> None:
    # Deliberate: an email is a global login identity, not tenant data.
    taken = {**_new_user(), "email": tenants.b.rows["users"]["email"]}

    with pytest.raises(Conflict) as caught:
        async with db.session(tenants.a.org_id) as session:
            await session.execute(insert(User).values(taken))

    assert caught.value.constraint == "uq_users_email"


async def test_joining_without_a_user_is_refused_not_skipped(
    db: Database, tenants: Tenants
) -> None:
    # A NULL argument must not make the call a silent no-op (the function is not STRICT).
    with pytest.raises(InvalidData):
        async with db.session(tenants.a.org_id) as session:
            await session.execute(_JOIN, {"user_id": None})
