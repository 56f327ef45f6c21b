"""Who is calling and for which organization: resolved from a request's headers, no I/O.

Two sources, chosen by ``AuthSettings.tenant_source``:

* ``jwt``: ``Authorization: Bearer <token>``; the signature, expiry, audience and
  (if configured) issuer are verified with PyJWT before any claim is read. The
  key is the static ``jwt_key`` or the one the token's ``kid`` names in the
  issuer's key set (``tenancy.web.jwks``). The user is ``sub``, the organization
  the configured claim.
* ``gateway-header`` (opt-in): a trusted gateway has authenticated the caller
  and sets the organization and user headers itself. The gateway must drop any
  copy of these headers a client sent; this service cannot tell them apart.

Malformed input is refused before the database is used; the only I/O is a key
set fetch, which ``tenancy.web.jwks`` bounds and rate-limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tenancy.extras import missing_extra

try:
    import jwt
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("web", exc) from exc

from tenancy.errors import TenantUnresolved, Unauthenticated
from tenancy.web.asgi import Scope, header_values
from tenancy.web.auth_settings import AuthSettings
from tenancy.web.jwks import KeySource, key_source_for

#: Fixed texts per failure: the caller learns which check failed, never token content.
_JWT_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidAudienceError, "token is not meant for this service (audience)"),
    (jwt.InvalidIssuerError, "token was issued by an untrusted issuer"),
    (jwt.InvalidSignatureError, "token signature does not verify"),
    (jwt.InvalidAlgorithmError, "token algorithm is not accepted"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
)


@dataclass(frozen=True)
class RequestIdentity:
    """The verified caller of one request and the organization it acts for."""

    org_id: uuid.UUID
    user_id: uuid.UUID
    source: Literal["jwt", "gateway-header"]


class TokenVerifier:
    """Verify bearer tokens against the configured keys, algorithms, audience and issuer."""

    def __init__(self, settings: AuthSettings, keys: KeySource | None = None) -> None:
        """Verify with ``keys``, or else the source ``settings`` configure (JWKS or static key)."""
        if settings.jwt_audience is None:
            raise ValueError("JWT verification needs jwt_audience")
        self._settings = settings
        self._keys = keys if keys is not None else key_source_for(settings)
        required = ["exp", "sub", "aud"] + (["iss"] if settings.jwt_issuer else [])
        self._options: Any = {"require": required}

    async def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of ``token`` once everything about it verified.

        Raises:
            Unauthenticated: the token is malformed, forged, expired, or for another
                audience, or its key cannot be had.
        """
        settings = self._settings
        try:
            header = jwt.get_unverified_header(token)
            algorithm, kid = header.get("alg"), header.get("kid")
            if not isinstance(algorithm, str) or not isinstance(kid, str | None):
                raise jwt.DecodeError("malformed header")
            # Checked before any key is looked up: `none` or a foreign algorithm
            # never costs a key set fetch.
            if algorithm not in settings.jwt_algorithms:
                raise jwt.InvalidAlgorithmError(algorithm)
            key = await self._keys.key_for(kid, algorithm)
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            detail = next((text for kind, text in _JWT_FAILURES if isinstance(exc, kind)), None)
            raise Unauthenticated(
                detail or "token is malformed", org_id=_unverified_org(token, settings)
            ) from None
        except Unauthenticated as exc:
            raise Unauthenticated(exc.detail, org_id=_unverified_org(token, settings)) from None


async def resolve_identity(
    scope: Scope, settings: AuthSettings, verifier: TokenVerifier | None
) -> RequestIdentity:
    """Return the verified caller and organization of the request in ``scope``.

    Raises:
        Unauthenticated: no credentials, or credentials that do not verify.
        TenantUnresolved: the organization is missing, repeated or not a UUID.
    """
    if settings.tenant_source == "gateway-header":
        org_id = _uuid_header(scope, settings.gateway_tenant_header, TenantUnresolved, None)
        user_id = _uuid_header(scope, settings.gateway_user_header, Unauthenticated, org_id)
        return RequestIdentity(org_id, user_id, "gateway-header")
    if verifier is None:
        raise ValueError("tenant_source=jwt needs a TokenVerifier")
    claims = await verifier.verify(_bearer_token(scope, settings))
    claimed = claims.get(settings.org_claim)
    if claimed is None:
        raise TenantUnresolved(f"token carries no {settings.org_claim!r} claim")
    claimed_org = _parse_uuid(claimed)
    if claimed_org is None:
        raise TenantUnresolved(f"token claim {settings.org_claim!r} is not a UUID")
    subject = _parse_uuid(claims.get("sub"))
    if subject is None:
        raise Unauthenticated("token subject is not a user id", org_id=claimed_org)
    return RequestIdentity(claimed_org, subject, "jwt")


def _bearer_token(scope: Scope, settings: AuthSettings) -> str:
    values = header_values(scope, "authorization")
    if not values:
        raise Unauthenticated("no bearer token")
    if len(values) > 1:
        raise Unauthenticated("more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization is not a bearer token")
    if len(token) > settings.max_token_bytes:
        raise Unauthenticated("token is too large")
    return token


def _uuid_header(
    scope: Scope,
    name: str,
    error: type[Unauthenticated] | type[TenantUnresolved],
    org_id: uuid.UUID | None,
) -> uuid.UUID:
    values = header_values(scope, name)
    if len(values) != 1:
        # Two copies of a tenant header mean someone upstream did not strip one.
        raise error(f"expected exactly one {name} header, got {len(values)}", org_id=org_id)
    parsed = _parse_uuid(values[0].strip())
    if parsed is None:
        raise error(f"{name} header is not a UUID", org_id=org_id)
    return parsed


def _parse_uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _unverified_org(token: str, settings: AuthSettings) -> uuid.UUID | None:
    # For the log only: which organization a refused token claimed to act for.
    # Never used for access; kept only when it parses as a UUID.
    try:
        claims: Mapping[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return _parse_uuid(claims.get(settings.org_claim))
