"""Issue 11, finding 1: no tenant takes over a shared user; memberships only by consent.

Acme and Globex are organizations; Globex's owner is the victim. Every attack
runs as the app role inside Acme's own transaction, through the repositories or
with raw SQL, and each test states exactly what Acme gets now.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import URL

from repositories import Accounts, LoginResolver
from repositories.models import Membership, User
from tenancy import Conflict, Database, InvalidData, IsolationViolation, NotFound
from tenancy.errors import translated
from tenancy.web.membership import UnitOfWorkMembershipCheck

pytestmark = pytest.mark.security


@dataclass(frozen=True)
class Tenant:
    """An organization and its owner, who signed up with a password hash."""

    org_id: uuid.UUID
    owner_id: uuid.UUID
    email: str


async def sign_up(
    db: Database,
    label: str,
    password_hash: str = "owner-hash",  # noqa: S107 - a test value
) -> tuple[uuid.UUID, str]:
    """Register a user through the tenant-less sign-up; return its id and email."""
    tag = secrets.token_hex(6)
    email = f"{label}-{tag}@example.com"
    user_id = await Accounts(db.engine).register(email, f"{label}-{tag}", password_hash)
    return user_id, email


async def found(db: Database, label: str) -> Tenant:
    """A new organization founded by a newly signed-up user."""
    owner_id, email = await sign_up(db, label)
    org_id = uuid.uuid4()
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.create(label, owner_id)
        await uow.commit()
    return Tenant(org_id, owner_id, email)


@pytest.fixture
async def acme(db: Database) -> Tenant:
    return await found(db, "acme")


@pytest.fixture
async def globex(db: Database) -> Tenant:
    return await found(db, "globex")


async def visible_users(db: Database, org_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.session(org_id) as session:
        return set((await session.execute(select(User.id))).scalars())


async def test_inviting_another_organizations_owner_shows_acme_nothing(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        await uow.organizations.invite_member(globex.email, "admin")
        await uow.commit()
        assert await uow.users.find_by_email(globex.email) is None
        assert globex.owner_id not in {m.user.id for m in await uow.users.members()}
    assert globex.owner_id not in await visible_users(db, acme.org_id)


async def test_acme_cannot_rename_or_deactivate_an_invited_user(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        await uow.organizations.invite_member(globex.email)
        await uow.commit()
    for values in ({"display_name": "pwned"}, {"is_active": False}):
        with pytest.raises(IsolationViolation):
            async with db.session(acme.org_id) as session:
                await session.execute(update(User).where(User.id == globex.owner_id).values(values))
    record = await LoginResolver(db.engine).resolve(globex.email)
    assert record is not None
    assert record.is_active is True


async def test_no_tenant_updates_even_its_own_accepted_member(db: Database, acme: Tenant) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(
                update(User).where(User.id == acme.owner_id).values(display_name="renamed")
            )
    async with db.unit_of_work(acme.org_id) as uow:
        with pytest.raises(InvalidData, match="no organization may change it"):
            await uow.users.update(acme.owner_id, {"display_name": "renamed"})


@pytest.mark.parametrize("status", ["active", "suspended"])
async def test_inserting_an_accepted_membership_with_sql_is_refused(
    db: Database, acme: Tenant, globex: Tenant, status: str
) -> None:
    with pytest.raises(IsolationViolation, match="refused by row-level security"):
        async with db.session(acme.org_id) as session:
            await session.execute(
                insert(Membership).values(user_id=globex.owner_id, role="owner", status=status)
            )
    assert globex.owner_id not in await visible_users(db, acme.org_id)


async def test_activating_a_pending_membership_with_sql_changes_nothing(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        await uow.organizations.invite_member(globex.email)
        await uow.commit()
    async with db.session(acme.org_id) as session:
        result = await session.execute(
            update(Membership).where(Membership.user_id == globex.owner_id).values(status="active")
        )
    assert result.rowcount == 0  # type: ignore[attr-defined]  # CursorResult of a DML statement
    assert globex.owner_id not in await visible_users(db, acme.org_id)


async def test_repointing_a_membership_at_another_user_is_refused(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(
                update(Membership)
                .where(Membership.user_id == acme.owner_id)
                .values(user_id=globex.owner_id)
            )


async def test_emptying_an_organization_does_not_reopen_the_founding_door(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(text("DELETE FROM memberships"))
            await session.execute(insert(Membership).values(user_id=globex.owner_id, role="owner"))


async def test_founding_again_cannot_make_another_user_an_owner(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    call = text("SELECT found_organization(:owner, 'again', NULL, '[]')")
    with pytest.raises(Conflict):
        async with db.session(acme.org_id) as session:
            await session.execute(call, {"owner": globex.owner_id})
    assert globex.owner_id not in await visible_users(db, acme.org_id)


async def test_registering_an_existing_user_as_a_member_is_refused(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    call = text("SELECT register_member(:user_id, CAST(:user AS jsonb), 'owner', '[]')")
    user = json.dumps({"email": "fresh@example.com", "username": f"fresh-{secrets.token_hex(4)}"})
    with pytest.raises(Conflict):
        async with db.session(acme.org_id) as session:
            await session.execute(call, {"user_id": globex.owner_id, "user": user})
    assert globex.owner_id not in await visible_users(db, acme.org_id)


@pytest.mark.parametrize(
    "call",
    [
        "SELECT found_organization(gen_random_uuid(), 'x', NULL, '[]')",
        "SELECT register_member(gen_random_uuid(), '{}', 'member', '[]')",
        "SELECT remove_membership(gen_random_uuid(), '[]')",
    ],
)
async def test_an_identity_call_without_a_tenant_is_refused(db: Database, call: str) -> None:
    with pytest.raises(IsolationViolation), translated():
        async with db.engine.begin() as connection:
            await connection.execute(text(call))


async def test_the_app_cannot_write_events_through_the_identity_calls_helper(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    call = text("SELECT write_outbox_events(:org, '[]')")
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(call, {"org": globex.org_id})


async def test_a_tenant_cannot_set_a_password_hash(db: Database, acme: Tenant) -> None:
    tag = secrets.token_hex(6)
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(
                insert(User).values(
                    email=f"new.hire-{tag}@globex.example",
                    username=f"hire-{tag}",
                    password_hash="chosen-by-acme",
                )
            )
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(
                text("SELECT register_user(:e, :u, 'chosen-by-acme')"),
                {"e": f"new.hire-{tag}@globex.example", "u": f"hire-{tag}"},
            )
    assert await LoginResolver(db.engine).resolve(f"new.hire-{tag}@globex.example") is None


async def test_a_pre_registered_account_never_carries_a_tenants_hash(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    # Acme creates the new hire's account as its own member: it may, but with no hash.
    tag = secrets.token_hex(6)
    email = f"new.hire-{tag}@globex.example"
    async with db.unit_of_work(acme.org_id) as uow:
        with pytest.raises(InvalidData, match="credentials are set only by signing up"):
            await uow.organizations.register_member(
                User(email=email, username=f"hire-{tag}", password_hash="chosen-by-acme")
            )
        await uow.organizations.register_member(User(email=email, username=f"hire-{tag}"))
        await uow.commit()
    async with db.unit_of_work(globex.org_id) as uow:
        invitation = await uow.organizations.invite_member(email)
        await uow.commit()

    record = await LoginResolver(db.engine).resolve(email)
    assert record is not None
    assert record.password_hash is None  # nothing to log in with: the account is only squatted
    assert invitation.user_id not in await visible_users(db, globex.org_id)


async def test_resolve_login_is_unreachable_from_a_unit_of_work(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        assert not hasattr(uow.users, "resolve_login")
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(
                text("SELECT * FROM resolve_login(:email)"), {"email": globex.email}
            )


async def test_suspension_holds_in_one_organization_only(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email)
        await uow.commit()
    await Accounts(db.engine).accept_invitation(invitation.token, globex.owner_id)
    async with db.unit_of_work(acme.org_id) as uow:
        suspended = await uow.organizations.suspend_member(globex.owner_id)
        await uow.commit()

    assert suspended.status == "suspended"
    async with db.unit_of_work(globex.org_id) as uow:
        at_home = await uow.organizations.get_membership(globex.owner_id)
    assert at_home is not None
    assert at_home.status == "active"
    record = await LoginResolver(db.engine).resolve(globex.email)
    assert record is not None
    assert record.is_active is True


async def test_invitation_accepted_with_its_token_makes_the_user_a_member(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email, "viewer")
        await uow.commit()
    assert globex.owner_id not in await visible_users(db, acme.org_id)

    org_id = await Accounts(db.engine).accept_invitation(invitation.token, globex.owner_id)

    assert org_id == acme.org_id
    assert globex.owner_id in await visible_users(db, acme.org_id)
    async with db.unit_of_work(acme.org_id) as uow:
        membership = await uow.organizations.get_membership(globex.owner_id)
    assert membership is not None
    assert (membership.status, membership.role) == ("active", "viewer")


async def test_an_invitation_token_works_once(db: Database, acme: Tenant, globex: Tenant) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email)
        await uow.commit()
    accounts = Accounts(db.engine)
    await accounts.accept_invitation(invitation.token, globex.owner_id)
    async with db.unit_of_work(acme.org_id) as uow:
        await uow.organizations.suspend_member(globex.owner_id)
        await uow.commit()

    with pytest.raises(NotFound, match="unknown, used, expired or not yours"):
        await accounts.accept_invitation(invitation.token, globex.owner_id)


async def test_an_expired_invitation_is_refused(
    db: Database, admin_engine_url: str, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email)
        await uow.commit()
    await expire(admin_engine_url, acme.org_id, globex.owner_id)

    with pytest.raises(NotFound, match="unknown, used, expired or not yours"):
        await Accounts(db.engine).accept_invitation(invitation.token, globex.owner_id)
    assert globex.owner_id not in await visible_users(db, acme.org_id)


async def test_a_token_accepted_for_another_user_is_refused(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email)
        await uow.commit()
    intruder, _ = await sign_up(db, "intruder")

    with pytest.raises(NotFound):
        await Accounts(db.engine).accept_invitation(invitation.token, intruder)


async def test_accepting_inside_a_tenant_is_refused(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email)
        await uow.commit()
    with pytest.raises(IsolationViolation):
        async with db.session(acme.org_id) as session:
            await session.execute(
                text("SELECT accept_invitation(:t, :u)"),
                {"t": invitation.token, "u": globex.owner_id},
            )


async def test_signing_up_with_a_taken_email_says_only_that_it_is_taken(
    db: Database, globex: Tenant
) -> None:
    with pytest.raises(Conflict) as caught:
        await Accounts(db.engine).register(globex.email, f"other-{secrets.token_hex(4)}", "h")
    assert caught.value.constraint == "uq_users_email"
    assert str(globex.org_id) not in str(caught.value)


async def test_the_middleware_check_admits_only_an_active_membership(
    db: Database, acme: Tenant, globex: Tenant
) -> None:
    check = UnitOfWorkMembershipCheck(db)
    async with db.unit_of_work(acme.org_id) as uow:
        invitation = await uow.organizations.invite_member(globex.email)
        await uow.commit()
    assert await check.is_member(acme.org_id, globex.owner_id) is False  # pending
    await Accounts(db.engine).accept_invitation(invitation.token, globex.owner_id)
    assert await check.is_member(acme.org_id, globex.owner_id) is True
    async with db.unit_of_work(acme.org_id) as uow:
        await uow.organizations.suspend_member(globex.owner_id)
        await uow.commit()
    assert await check.is_member(acme.org_id, globex.owner_id) is False  # suspended
    assert await check.is_member(globex.org_id, globex.owner_id) is True


async def expire(admin_url: str, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Move an invitation's expiry into the past (as the superuser, who bypasses RLS)."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(
            "UPDATE memberships SET invitation_expires_at = now() - interval '1 second'"
            " WHERE org_id = $1 AND user_id = $2",
            org_id,
            user_id,
        )
    finally:
        await connection.close()


@pytest.fixture
def admin_engine_url(admin_url: URL) -> str:
    """The superuser URL of the test database, for asyncpg."""
    return admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
