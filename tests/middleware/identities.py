"""Test identities: members of organizations, and the tokens they would present."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt
from pydantic import SecretStr
from sqlalchemy import insert, text

from repositories.models import Organization, User
from tenancy import Database
from tenancy.web.auth_settings import AuthSettings

#: One random secret per test run: no token minted here is valid anywhere else.
SECRET = secrets.token_urlsafe(48)
AUDIENCE = "tenancy-api"
ISSUER = "https://issuer.test"


def jwt_settings(**overrides: Any) -> AuthSettings:
    """Return settings for HS256 tokens signed with ``SECRET``, audience and issuer set."""
    values: dict[str, Any] = {
        "tenant_source": "jwt",
        "jwt_key": SecretStr(SECRET),
        "jwt_algorithms": ["HS256"],
        "jwt_audience": AUDIENCE,
        "jwt_issuer": ISSUER,
        "exempt_paths": ["/health"],
    }
    values.update(overrides)
    return AuthSettings(**values)


def mint(
    *,
    sub: object,
    org: object,
    key: Any = SECRET,
    algorithm: str = "HS256",
    expires_in: int = 300,
    kid: str | None = None,
    **claims: Any,
) -> str:
    """Return a signed token for ``sub`` acting in ``org``; ``claims`` override the defaults.

    ``kid`` names the signing key in the header, as an issuer with a key set does.
    """
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": str(sub),
        "org_id": str(org),
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + expires_in,
    }
    payload.update(claims)
    claims_set = {k: v for k, v in payload.items() if v is not None}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims_set, key, algorithm=algorithm, headers=headers)


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


async def create_member(db: Database, org_id: uuid.UUID, role: str = "member") -> uuid.UUID:
    """Register a new user and make it a member of ``org_id``; return the user id."""
    tag = uuid.uuid4().hex
    user_id = uuid.uuid4()
    async with db.session(org_id) as session:
        # Core insert: the app role may not write is_active, which the ORM would send.
        await session.execute(
            insert(User).values(id=user_id, email=f"{tag}@example.com", username=f"u_{tag}")
        )
        # Active at once: the database admits that for a user this transaction created.
        await session.execute(
            text("SELECT public.join_organization(:user_id, :role)"),
            {"user_id": user_id, "role": role},
        )
    return user_id


async def create_org(db: Database, name: str = "org") -> uuid.UUID:
    """Create an organization as its own tenant; return its id."""
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name=name))
    return org_id
