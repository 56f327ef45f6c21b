"""Helpers of the user and organization repository tests: users and registered members."""

from __future__ import annotations

import secrets
import uuid

from repositories.models import User
from tenancy import Database


def new_user(prefix: str = "member") -> User:
    """Return a new, unsaved user with a unique email and username."""
    tag = secrets.token_hex(6)
    return User(email=f"{prefix}-{tag}@example.com", username=f"{prefix}-{tag}")


async def register(db: Database, org_id: uuid.UUID, role: str = "member") -> User:
    """Register a new user as a member of ``org_id`` with ``role``, committed."""
    user = new_user()
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.register_member(user, role)
        await uow.commit()
    return user
