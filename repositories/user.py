"""Users: global identities, visible in a tenant as its members; the tenant-less login lookup.

A user row is visible inside a tenant only while it has an accepted membership
there (the users policy), so every query here sees the current organization's
users and no others. No tenant changes a user: the row is shared by every
organization the user joined, so the database refuses UPDATE to the app role.
Logging in happens before any tenant is known: that path goes through the
SECURITY DEFINER function ``resolve_login``, which refuses to run inside a tenant.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from repositories.base import AsyncRepository
from repositories.email_address import email_key, normalize_email
from repositories.lifecycle import AggregateCreated, lifecycle_event
from repositories.models import MemberRole, Membership, User
from repositories.validation import Check, parse_member
from tenancy.errors import InvalidData, translated
from tenancy.events.domain_event import DomainEvent
from tenancy.schema.declarative import utcnow
from tenancy.specification import Specification

#: User columns checked (and normalised) before an update reaches SQL.
USER_CHECKS: Mapping[str, Check] = {"email": normalize_email}

_ADD_REFUSED = "a user joins with a membership: organizations.create or register_member"
_UPDATE_REFUSED = "a user is a global identity: no organization may change it"

#: Columns never copied into events: the outbox and the broker must not carry hashes.
SECRET_COLUMNS = frozenset({"password_hash"})

# One exact email in, at most one row out: the function has no pattern semantics.
_RESOLVE_LOGIN = text("SELECT user_id, password_hash, is_active FROM resolve_login(:email)")


def normalize_username(username: str) -> str:
    """Return ``username`` as stored: stripped and lower-cased."""
    return username.strip().lower()


def parse_role(role: MemberRole | str) -> MemberRole:
    """Return ``role`` as a ``MemberRole``.

    Raises:
        InvalidData: ``role`` is not one of the member roles.
    """
    return parse_member(MemberRole, role, what="member role", constraint="ck_memberships_role")


def public_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Return ``values`` without the secret columns (for event payloads)."""
    return {name: value for name, value in values.items() if name not in SECRET_COLUMNS}


def user_created_event(user: User) -> DomainEvent:
    """Return the ``UserCreated`` event of a just-inserted user, without its secrets."""
    event_class = lifecycle_event(AggregateCreated, "User", User.__tablename__)
    # Straight from the loaded state: the hash is deferred (and unreadable to the app
    # role), so touching the attribute could mean a refused lazy load.
    loaded = user.__dict__
    columns = {
        attr.key: loaded.get(attr.key)
        for attr in User.__mapper__.column_attrs
        if attr.key not in SECRET_COLUMNS
    }
    return event_class(aggregate_id=str(user.id), data=columns)


@dataclass(frozen=True)
class LoginRecord:
    """What login needs to know of a user: id, password hash, and whether it may log in."""

    user_id: uuid.UUID
    password_hash: str | None
    is_active: bool


@dataclass(frozen=True)
class Member:
    """A user of the current organization with its role and standing there (a read view)."""

    user: User
    role: str
    joined_at: datetime
    status: str


async def resolve_login(connection: AsyncConnection, email: str) -> LoginRecord | None:
    """Return the login record of the user with exactly ``email`` (any case), or ``None``.

    Only on a connection with no tenant: inside a tenant's transaction the function
    refuses (``IsolationViolation``), so no organization reads a password hash.
    """
    normalized = email_key(email)
    if not normalized:
        return None
    with translated():
        result = await connection.execute(_RESOLVE_LOGIN, {"email": normalized})
    row = result.first()
    if row is None:
        return None
    return LoginRecord(
        user_id=row.user_id, password_hash=row.password_hash, is_active=row.is_active
    )


async def list_members(session: AsyncSession, role: MemberRole | str | None = None) -> list[Member]:
    """Return the current organization's members with their roles, oldest first.

    Raises:
        InvalidData: ``role`` is not a member role.
    """
    statement = (
        # The join drops pending invitations: their users are invisible (users policy).
        select(User, Membership.role, Membership.created_at, Membership.status)
        .join(Membership, Membership.user_id == User.id)
        .order_by(Membership.created_at, User.id)
    )
    if role is not None:
        statement = statement.where(Membership.role == parse_role(role).value)
    with translated():
        rows = (await session.execute(statement)).all()
    return [
        Member(user=user, role=role_, joined_at=joined, status=status)
        for user, role_, joined, status in rows
    ]


class LoginResolver:
    """The login lookup before any tenant is known: one user by exact email, nothing else.

    Use ``LoginResolver(db.engine)``. It runs on a plain app-role connection that
    carries no ``app.org_id``, where every tenant table, users included, shows no
    rows; the only way to a user is ``resolve_login``, which matches one exact
    (lower-cased) email. No pattern matching: ``%`` is a character, so the
    resolver cannot be used to list users.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def resolve(self, email: str) -> LoginRecord | None:
        """Return the login record for ``email``, or ``None`` when no user has it.

        Raises:
            DatabaseUnavailable: the database cannot be reached.
        """
        with translated():
            async with self._engine.connect() as connection:
                # Leaving the block rolls the read-only transaction back.
                return await resolve_login(connection, email)


class UserRepository(AsyncRepository[User, uuid.UUID]):
    """Storage of ``User`` aggregates as seen from the current organization.

    A tenant creates a user only together with a membership, through
    ``OrganizationRepository.create`` or ``register_member``, and never with
    credentials (``Accounts.register`` sets those, without a tenant). Users are
    read-only here: suspension is per organization
    (``OrganizationRepository.suspend_member``).
    """

    model = User
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "email": "email",
        "username": "username",
    }

    async def add(self, obj: User) -> User:
        """Refuse: a user joins through ``organizations.create`` or ``register_member``.

        Raises:
            InvalidData: always.
        """
        raise InvalidData(_ADD_REFUSED)

    async def add_many(self, objs: Sequence[User]) -> builtins.list[User]:
        """Refuse: a user joins through ``organizations.create`` or ``register_member``.

        Raises:
            InvalidData: always.
        """
        raise InvalidData(_ADD_REFUSED)

    async def update(
        self, id_: uuid.UUID, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> User:
        """Refuse: a user is shared by organizations, so none of them may change it.

        Raises:
            InvalidData: always (the database refuses the UPDATE too).
        """
        raise InvalidData(_UPDATE_REFUSED)

    async def update_where(self, spec: Specification[User], changes: Mapping[str, Any]) -> int:
        """Refuse: a user is shared by organizations, so none of them may change it.

        Raises:
            InvalidData: always (the database refuses the UPDATE too).
        """
        raise InvalidData(_UPDATE_REFUSED)

    async def find_by_email(self, email: str) -> User | None:
        """Return the member with ``email`` (any case), or ``None``."""
        return await self._first(select(User).where(User.email == email_key(email)))

    async def find_by_username(self, username: str) -> User | None:
        """Return the member with ``username`` (any case), or ``None``."""
        return await self._first(select(User).where(User.username == normalize_username(username)))

    async def members(self, role: MemberRole | str | None = None) -> builtins.list[Member]:
        """Return the users of the current organization with their roles, oldest member first.

        Raises:
            InvalidData: ``role`` is not a member role.
        """
        found = await list_members(self.session, role)
        for member in found:
            self._see(member.user)
        return found

    async def _first(self, statement: Any) -> User | None:
        user: User | None = (await self._execute(statement)).scalars().first()
        return self._see(user) if user is not None else None

    def _event(self, base: type[DomainEvent], obj_id: object, **fields: Any) -> DomainEvent:
        # Every user event passes here; strip password hashes before they reach the outbox.
        for key in ("data", "changes"):
            if isinstance(fields.get(key), dict):
                fields[key] = public_columns(fields[key])
        return super()._event(base, obj_id, **fields)


def new_user_values(user: User) -> dict[str, Any]:
    """Return the columns a tenant may write of the new ``user``, normalised.

    Raises:
        InvalidData: the user carries a password hash (only ``register_user``, run
            without a tenant, sets credentials), or its email is refused.
    """
    if user.__dict__.get("password_hash") is not None:
        raise InvalidData("credentials are set only by signing up (Accounts.register)")
    user.email = normalize_email(user.email)
    user.username = normalize_username(user.username)
    if user.id is None:
        user.id = uuid.uuid4()
    if user.display_name is None:
        user.display_name = ""
    if user.created_at is None:
        user.created_at = utcnow()
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "display_name": user.display_name,
        "created_at": user.created_at,
    }
