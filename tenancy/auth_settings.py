"""Settings of request authentication: JWT keys and algorithms, or a trusted gateway header.

Read from ``TENANCY_AUTH_*`` variables and passed explicitly to the middleware,
like ``TenancySettings``. Validation refuses configurations that would let a
forged token through (``none``, or algorithm families mixed under one key).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
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
    exempt_paths: list[str] = Field(
        default_factory=list,
        description="Exact paths served without a tenant (health checks); no data access there.",
    )

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
        if self.jwt_key is None or not self.jwt_key.get_secret_value():
            raise ValueError("tenant_source=jwt needs jwt_key")
        if self.jwt_audience is None:
            raise ValueError("tenant_source=jwt needs jwt_audience")
        secret_bytes = len(self.jwt_key.get_secret_value().encode())
        if self.family == "hmac" and secret_bytes < MIN_HMAC_SECRET_BYTES:
            raise ValueError(f"HMAC secret must be at least {MIN_HMAC_SECRET_BYTES} bytes")
        return self

    @property
    def family(self) -> str:
        """Return the key family (``hmac``, ``rsa``, ``ec`` or ``okp``) of the algorithms."""
        first = self.jwt_algorithms[0]
        return next(name for name, members in ALGORITHM_FAMILIES.items() if first in members)
