"""UserRepository, Accounts and LoginResolver: members, roles, sign-up and login."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from repositories.account import Accounts
from repositories.models import User
from repositories.user import LoginResolver
from tenancy import Database, InvalidData, NotFound
from tests.repositories.members_support import new_user, register
from tests.repositories.payments_support import RecordingDispatcher

if TYPE_CHECKING:
    from tests.repositories.conftest import FoundedOrganization


# -- finding members ------------------------------------------------------------


async def test_find_by_email_ignores_case_and_surrounding_blanks(
    db: Database, founded: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        found = await uow.users.find_by_email(f"  {founded.owner.email.upper()} ")
        assert found is not None
        assert found.id == founded.owner.id


async def test_find_by_username_ignores_case(db: Database, founded: FoundedOrganization) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        found = await uow.users.find_by_username(founded.owner.username.upper())
        assert found is not None
        assert found.id == founded.owner.id


async def test_find_by_unknown_email_is_none(db: Database, founded: FoundedOrganization) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        assert await uow.users.find_by_email("nobody@example.com") is None


async def test_user_of_another_organization_is_not_found_by_email(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        assert await uow.users.find_by_email(founded_other.owner.email) is None
        assert await uow.users.find_by_username(founded_other.owner.username) is None


async def test_get_of_a_user_of_another_organization_is_not_found(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(NotFound):
            await uow.users.get(founded_other.owner.id)


async def test_members_lists_the_organizations_users_with_their_roles(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    viewer = await register(db, founded.org_id, "viewer")
    async with db.unit_of_work(founded.org_id) as uow:
        members = [(m.user.id, m.role) for m in await uow.users.members()]
    assert members == [
        (founded.owner.id, "owner"),
        (viewer.id, "viewer"),
    ]


async def test_members_filtered_by_role(db: Database, founded: FoundedOrganization) -> None:
    admin = await register(db, founded.org_id, "admin")
    await register(db, founded.org_id, "member")
    async with db.unit_of_work(founded.org_id) as uow:
        admins = [m.user.id for m in await uow.users.members("admin")]
    assert admins == [admin.id]


async def test_members_with_an_unknown_role_is_invalid(
    db: Database, founded: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(InvalidData):
            await uow.users.members("superuser")


async def test_register_member_stores_email_and_username_lower_case(
    db: Database, org_a: uuid.UUID
) -> None:
    tag = secrets.token_hex(6)
    user = User(email=f" Mixed-{tag}@Example.COM", username=f"Mixed-{tag}")
    async with db.unit_of_work(org_a) as uow:
        await uow.organizations.register_member(user)
        await uow.commit()
    assert (user.email, user.username) == (f"mixed-{tag}@example.com", f"mixed-{tag}")
    record = await LoginResolver(db.engine).resolve(user.email)
    assert record is not None
    assert record.user_id == user.id


async def test_users_add_is_refused_without_a_membership(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="a user joins with a membership"):
            await uow.users.add(new_user())


# -- sign-up ------------------------------------------------------------------------


async def test_sign_up_stores_the_credentials_login_reads(db: Database) -> None:
    tag = secrets.token_hex(6)
    user_id = await Accounts(db.engine).register(f"Signup-{tag}@Example.com", f"s-{tag}", "h")
    record = await LoginResolver(db.engine).resolve(f"signup-{tag}@example.com")
    assert record is not None
    assert (record.user_id, record.password_hash, record.is_active) == (user_id, "h", True)


async def test_creating_an_organization_with_a_password_hash_is_invalid(db: Database) -> None:
    user = new_user()
    user.password_hash = "secret-hash"
    async with db.unit_of_work(uuid.uuid4()) as uow:
        with pytest.raises(InvalidData, match="credentials are set only by signing up"):
            await uow.organizations.create("Hashless", user)


# -- the tenant-less login lookup ---------------------------------------------------


async def test_login_resolver_finds_a_user_without_any_tenant(
    db: Database, founded: FoundedOrganization
) -> None:
    record = await LoginResolver(db.engine).resolve(f" {founded.owner.email.upper()} ")
    assert record is not None
    assert (record.user_id, record.password_hash, record.is_active) == (
        founded.owner.id,
        None,  # created by its organization: no credentials until an identity flow sets them
        True,
    )


async def test_login_resolver_returns_none_for_an_unknown_email(db: Database) -> None:
    assert await LoginResolver(db.engine).resolve("nobody-at-all@example.com") is None


async def test_login_resolver_returns_none_for_a_blank_email(db: Database) -> None:
    assert await LoginResolver(db.engine).resolve("   ") is None


@pytest.mark.security
@pytest.mark.parametrize("pattern", ["%", "%@example.com", "owner-%", "_%", "*", ".*"])
async def test_login_resolver_has_no_wildcards(
    db: Database, founded: FoundedOrganization, pattern: str
) -> None:
    assert await LoginResolver(db.engine).resolve(pattern) is None


@pytest.mark.security
async def test_the_resolvers_connection_cannot_select_users(
    db: Database, founded: FoundedOrganization
) -> None:
    # The resolver's connection carries no tenant: the table itself shows nothing.
    async with db.engine.connect() as connection:
        visible = (await connection.execute(text("SELECT count(*) FROM users"))).scalar_one()
    assert visible == 0


async def test_a_user_registered_without_a_password_hash_raises_its_created_event(
    recording_db: Database, recorded_events: RecordingDispatcher
) -> None:
    tag = uuid.uuid4().hex[:8]
    user = User(email=f"nohash-{tag}@example.com", username=f"nohash-{tag}")
    async with recording_db.unit_of_work(uuid.uuid4()) as uow:
        await uow.organizations.create("No hash", user)
        await uow.commit()
    created = [e for e in recorded_events.events if e.event_type() == "UserCreated"]
    assert [e.payload()["data"]["email"] for e in created] == [user.email]
