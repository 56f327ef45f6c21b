"""Settings of request authentication: a JWT key or key set and algorithms, or a gateway header.

Read from ``TENANCY_AUTH_*`` variables and passed explicitly to the middleware,
like ``TenancySettings``. Validation refuses configurations that would let a
forged token through (``none``, algorithm families mixed under one key, a key
set fetched over plain HTTP from another host). List settings take JSON
(``["RS256","PS256"]``) or comma-separated text (``RS256,PS256``).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Algorithms by key type. One key serves one family only: accepting HS256 next to
#: RS256 would let an attacker sign with the public key as an HMAC secret.
ALGORITHM_FAMILIES: dict[str, frozenset[str]] = {
    "hmac": frozenset({"HS256", "HS384", "HS512"}),
    "rsa": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "ec": frozenset({"ES256", "ES256K", "ES384", "ES512"}),
    "okp": frozenset({"EdDSA"}),
}

#: HMAC secrets shorter than the hash output make brute force easier (RFC 7518 3.2).
MIN_HMAC_SECRET_BYTES = 32

#: Hosts a key set may be fetched from over plain HTTP (a sidecar, a test server).
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

#: A list read from the environment as text; ``_split_list`` parses it (JSON or commas).
TextList = Annotated[list[str], NoDecode]


def check_jwks_url(url: str) -> str:
    """Return ``url`` if keys may be fetched from it: https, or http on a loopback host.

    Raises:
        ValueError: another scheme, no host, or plain http to another host (keys
            fetched in clear could be swapped by anyone on the path).
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("jwks_url needs a host")
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        return url
    raise ValueError("jwks_url must be https (plain http only on a loopback host)")


class AuthSettings(BaseSettings):
    """How the tenant middleware authenticates requests; every field is ``TENANCY_AUTH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TENANCY_AUTH_", extra="ignore")

    tenant_source: Literal["jwt", "gateway-header"] = Field(
        default="jwt",
        description=(
            "Where the organization comes from: a verified JWT claim, or (opt-in) headers set "
            "by a trusted gateway that already authenticated the caller."
        ),
    )
    jwt_key: SecretStr | None = Field(
        default=None,
        description="HMAC secret, or PEM public key for RS/PS/ES/EdDSA algorithms.",
    )
    jwks_url: str | None = Field(
        default=None,
        description="JWKS endpoint of the identity provider; exclusive with jwt_key.",
    )
    jwks_cache_seconds: float = Field(
        default=300, gt=0, le=86_400, description="How long a fetched key set is trusted."
    )
    jwks_timeout_seconds: float = Field(
        default=5, gt=0, le=60, description="Longest a key set fetch may take."
    )
    jwks_min_refresh_seconds: float = Field(
        default=30,
        ge=1,
        le=3600,
        description="Fewest seconds between two fetches, whatever kids callers send.",
    )
    jwt_algorithms: TextList = Field(default_factory=lambda: ["RS256"])
    jwt_audience: str | None = Field(
        default=None, description="Required `aud` value; tokens for other services are refused."
    )
    jwt_issuer: str | None = Field(default=None, description="Required `iss` value, if set.")
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=300)
    org_claim: str = Field(default="org_id", min_length=1)
    max_token_bytes: int = Field(default=8192, ge=256)
    gateway_tenant_header: str = "x-tenant-id"
    gateway_user_header: str = "x-user-id"
    require_membership: bool = Field(
        default=True, description="Check that the caller is a member of the organization."
    )
    exempt_paths: TextList = Field(
        default_factory=list,
        description="Exact paths served without a tenant (health checks); no data access there.",
    )

    @field_validator("jwt_algorithms", "exempt_paths", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        # The environment gives text: JSON if it looks like a list, else commas.
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]

    @field_validator("jwks_url")
    @classmethod
    def _safe_jwks_url(cls, url: str | None) -> str | None:
        return None if url is None else check_jwks_url(url)

    @field_validator("jwt_algorithms")
    @classmethod
    def _one_family(cls, algorithms: list[str]) -> list[str]:
        if not algorithms:
            raise ValueError("at least one JWT algorithm is required")
        families = {
            name for name, members in ALGORITHM_FAMILIES.items() if set(algorithms) & members
        }
        known = set().union(*ALGORITHM_FAMILIES.values())
        unknown = [a for a in algorithms if a not in known]
        if unknown:
            # Includes "none": an unsigned token must never verify.
            raise ValueError(f"unsupported JWT algorithms {unknown}")
        if len(families) > 1:
            raise ValueError("JWT algorithms must share one key type (e.g. only RS*/PS*)")
        return algorithms

    @field_validator("gateway_tenant_header", "gateway_user_header")
    @classmethod
    def _lower_header(cls, name: str) -> str:
        # ASGI header names arrive lower-cased.
        return name.strip().lower()

    @model_validator(mode="after")
    def _jwt_complete(self) -> Self:
        if self.tenant_source != "jwt":
            return self
        secret = self.jwt_key.get_secret_value() if self.jwt_key is not None else ""
        if secret and self.jwks_url:
            raise ValueError("jwt_key and jwks_url are exclusive: set one")
        if not secret and not self.jwks_url:
            raise ValueError("tenant_source=jwt needs jwt_key or jwks_url")
        if self.jwt_audience is None:
            raise ValueError("tenant_source=jwt needs jwt_audience")
        if self.jwks_url and self.family == "hmac":
            # A key set is public; an HMAC secret published in one is no secret.
            raise ValueError("jwks_url serves public keys: use RS/PS/ES/EdDSA algorithms")
        if self.jwks_cache_seconds < self.jwks_min_refresh_seconds:
            raise ValueError("jwks_cache_seconds must be at least jwks_min_refresh_seconds")
        if self.family == "hmac" and len(secret.encode()) < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"HMAC secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")
        return self

    @property
    def family(self) -> str:
        """Return the key family (``hmac``, ``rsa``, ``ec`` or ``okp``) of the algorithms."""
        first = self.jwt_algorithms[0]
        return next(name for name, members in ALGORITHM_FAMILIES.items() if first in members)
