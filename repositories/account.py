"""What a user does for themself, before and outside any tenant: sign up, accept an invitation.

Both run on a plain app-role connection with no ``app.org_id`` (like ``LoginResolver``)
and go through SECURITY DEFINER functions that refuse to run inside a tenant's
transaction: no organization can choose a user's credentials or accept an
invitation in the user's place from within its own unit of work. The caller has
authenticated the user whose id it passes to ``accept_invitation``.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.email_address import normalize_email
from tenancy.errors import NotFound, translated

_REGISTER = text("SELECT register_user(:email, :username, :password_hash)")
_ACCEPT = text("SELECT accept_invitation(:token, :user_id)")


def token_hash(token: str) -> bytes:
    """Return the SHA-256 of an invitation token, as stored (the token itself never is)."""
    return hashlib.sha256(token.encode()).digest()


class Accounts:
    """Sign-up and invitation acceptance, tenant-less: ``Accounts(db.engine)``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def register(self, email: str, username: str, password_hash: str | None) -> uuid.UUID:
        """Create a user with its credentials; return its id. It belongs to no organization yet.

        Raises:
            Conflict: the email or username is taken (all that sign-up reveals).
            InvalidData: the email is refused.
        """
        params = {
            "email": normalize_email(email),
            "username": username.strip().lower(),
            "password_hash": password_hash,
        }
        with translated():
            async with self._engine.begin() as connection:
                user_id: uuid.UUID = (await connection.execute(_REGISTER, params)).scalar_one()
        return user_id

    async def accept_invitation(self, token: str, user_id: uuid.UUID) -> uuid.UUID:
        """Make the invitation of ``token`` an active membership of ``user_id``; return its org.

        A token works once, only for the user it was issued to, and only until it expires.

        Raises:
            NotFound: the token is unknown, used, expired, or issued to another user.
        """
        with translated():
            async with self._engine.begin() as connection:
                params = {"token": token, "user_id": user_id}
                org_id: uuid.UUID | None = (await connection.execute(_ACCEPT, params)).scalar()
        if org_id is None:
            raise NotFound("the invitation is unknown, used, expired or not yours")
        return org_id
