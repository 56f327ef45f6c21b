"""Users are shared between organizations: none of them may read secrets or take over accounts."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from repositories.account import Accounts
from repositories.models import User
from repositories.user import LoginResolver
from tenancy import Database, IsolationViolation

pytestmark = pytest.mark.security


@pytest.fixture
async def org_a(db: Database) -> uuid.UUID:
    """An organization created with ``member`` as its owner (see below)."""
    return uuid.uuid4()


@pytest.fixture
async def member(db: Database, org_a: uuid.UUID) -> User:
    """A user who signed up with a password hash and founded ``org_a``."""
    tag = uuid.uuid4().hex[:8]
    email = f"secret-{tag}@example.com"
    user_id = await Accounts(db.engine).register(email, f"secret-{tag}", "h1")
    async with db.unit_of_work(org_a) as uow:
        await uow.organizations.create("Secrets", user_id)
        await uow.commit()
    return User(id=user_id, email=email, username=f"secret-{tag}")


async def test_app_role_cannot_read_a_members_password_hash(
    db: Database, org_a: uuid.UUID, member: User
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(org_a) as session:
            await session.execute(
                text("SELECT password_hash FROM users WHERE id = :id"), {"id": member.id}
            )


@pytest.mark.parametrize(
    ("column", "value"),
    [("email", "attacker@example.com"), ("username", "attacker"), ("password_hash", "x")],
)
async def test_app_role_cannot_rewrite_identity_columns(
    db: Database, org_a: uuid.UUID, member: User, column: str, value: str
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(org_a) as session:
            await session.execute(
                text(f"UPDATE users SET {column} = :value WHERE id = :id"),
                {"value": value, "id": member.id},
            )


async def test_login_still_reads_the_hash_through_the_resolver(db: Database, member: User) -> None:
    record = await LoginResolver(db.engine).resolve(member.email)
    assert record is not None
    assert record.password_hash == "h1"


async def test_loading_a_member_does_not_touch_the_hash(
    db: Database, org_a: uuid.UUID, member: User
) -> None:
    async with db.unit_of_work(org_a) as uow:
        loaded = await uow.users.get(member.id)
        assert loaded.email == member.email
        assert "password_hash" not in loaded.__dict__
