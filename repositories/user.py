"""Users: global identities, visible in a tenant as its members; the tenant-less login lookup.

A user row is visible inside a tenant only while it has a membership there (the
users policy), so every query here sees the current organization's users and no
others. Logging in happens before any tenant is known: that path goes through
the SECURITY DEFINER function ``resolve_login``, never through the table.
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

from models import MemberRole, Membership, User
from repositories.base import AsyncRepository
from repositories.email_address import email_key, normalize_email
from repositories.lifecycle import AggregateCreated, lifecycle_event
from repositories.validation import Check, checked_values, parse_member
from tenancy.errors import raise_translated
from tenancy.events import DomainEvent
from tenancy.specification import Specification

#: User columns checked (and normalised) before an update reaches SQL.
USER_CHECKS: Mapping[str, Check] = {"email": normalize_email}

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
    """A user of the current organization with its role there (a read view)."""

    user: User
    role: str
    joined_at: datetime


async def resolve_login(executor: AsyncSession | AsyncConnection, email: str) -> LoginRecord | None:
    """Return the login record of the user with exactly ``email`` (any case), or ``None``.

    Works in a session of any tenant and on a connection with no tenant at all:
    the SECURITY DEFINER function reads the one matching row whatever the tenant.
    """
    normalized = email_key(email)
    if not normalized:
        return None
    try:
        result = await executor.execute(_RESOLVE_LOGIN, {"email": normalized})
    except Exception as exc:
        raise_translated(exc)
        raise
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
        select(User, Membership.role, Membership.created_at)
        .join(Membership, Membership.user_id == User.id)
        .order_by(Membership.created_at, User.id)
    )
    if role is not None:
        statement = statement.where(Membership.role == parse_role(role).value)
    try:
        rows = (await session.execute(statement)).all()
    except Exception as exc:
        raise_translated(exc)
        raise
    return [Member(user=user, role=role_, joined_at=joined) for user, role_, joined in rows]


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
        try:
            async with self._engine.connect() as connection:
                # Leaving the block rolls the read-only transaction back.
                return await resolve_login(connection, email)
        except Exception as exc:
            raise_translated(exc)
            raise


class UserRepository(AsyncRepository[User, uuid.UUID]):
    """Storage of ``User`` aggregates as seen from the current organization.

    A new user is registered together with a membership, through
    ``OrganizationRepository.create`` or ``register_member``; a user added alone
    would be invisible here until it joins.
    """

    model = User
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "email": "email",
        "username": "username",
    }

    async def add(self, obj: User) -> User:
        """Insert ``obj`` with its email and username normalised (no membership).

        Raises:
            Conflict: the email or username is taken.
        """
        _normalize(obj)
        return await super().add(obj)

    async def add_many(self, objs: Sequence[User]) -> builtins.list[User]:
        """Insert several users with normalised emails and usernames (no memberships)."""
        for obj in objs:
            _normalize(obj)
        return await super().add_many(objs)

    async def update(
        self, id_: uuid.UUID, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> User:
        """Apply ``changes`` to one member, a new email checked and normalised.

        Raises:
            NotFound: the user is not a member of the current organization.
            Conflict: a stale version, or the new email is taken.
            InvalidData: a change names an unknown column, or the email is refused.
        """
        checked = checked_values(changes, USER_CHECKS)
        return await super().update(id_, checked, expected_version=expected_version)

    async def update_where(self, spec: Specification[User], changes: Mapping[str, Any]) -> int:
        """Apply ``changes`` to every matching member; return the count.

        Raises:
            InvalidData: the email is refused.
        """
        return await super().update_where(spec, checked_values(changes, USER_CHECKS))

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

    async def deactivate(self, user_id: uuid.UUID) -> User:
        """Mark a member inactive so that login refuses it (in every organization).

        Raises:
            NotFound: the user is not a member of the current organization.
        """
        user = await self.get(user_id)
        if not user.is_active:
            return user
        return await self.update(user_id, {"is_active": False})

    async def resolve_login(self, email: str) -> LoginRecord | None:
        """Return the login record for ``email`` whatever organization the user is in."""
        return await resolve_login(self.session, email)

    async def _first(self, statement: Any) -> User | None:
        user: User | None = (await self._execute(statement)).scalars().first()
        return self._see(user) if user is not None else None

    def _event(self, base: type[DomainEvent], obj_id: object, **fields: Any) -> DomainEvent:
        # Every user event passes here; strip password hashes before they reach the outbox.
        for key in ("data", "changes"):
            if isinstance(fields.get(key), dict):
                fields[key] = public_columns(fields[key])
        return super()._event(base, obj_id, **fields)


def _normalize(user: User) -> None:
    user.email = normalize_email(user.email)
    user.username = normalize_username(user.username)
