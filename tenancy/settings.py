"""Settings: one ``BaseSettings`` class, read from ``TENANCY_*`` variables, passed in explicitly."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from tenancy.schema.role_names import (
    APP_ROLE,
    CHAIN_ROLE,
    OWNER_ROLE,
    RELAY_ROLE,
    RESOLVER_ROLE,
    ROLE_NAME_PATTERN,
    RoleNames,
)

__all__ = [
    "APP_ROLE",
    "CHAIN_ROLE",
    "DEFAULT_DATABASE_URL",
    "OWNER_ROLE",
    "RELAY_ROLE",
    "RESOLVER_ROLE",
    "TenancySettings",
    "async_url",
]

DEFAULT_DATABASE_URL = "postgresql+asyncpg://tenancy_app:tenancy_app@127.0.0.1:5432/tenancy"


class TenancySettings(BaseSettings):
    """Configuration of the data layer; every field maps to ``TENANCY_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TENANCY_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="URL the application connects with (as the app role).",
    )
    admin_database_url: str | None = Field(
        default=None,
        description="Owner or superuser URL for migrate/seed/audit; derived app URLs come from it.",
    )
    # Role names: two services on one cluster can share the defaults or own theirs.
    owner_role: str = Field(default=OWNER_ROLE, pattern=ROLE_NAME_PATTERN)
    app_role: str = Field(default=APP_ROLE, pattern=ROLE_NAME_PATTERN)
    relay_role: str = Field(default=RELAY_ROLE, pattern=ROLE_NAME_PATTERN)
    resolver_role: str = Field(default=RESOLVER_ROLE, pattern=ROLE_NAME_PATTERN)
    chain_role: str = Field(default=CHAIN_ROLE, pattern=ROLE_NAME_PATTERN)
    # Unset means "leave the password alone": `tenancy migrate` sets a password only
    # when one is given, so it never resets a production password, and a derived
    # URL carries none (trust, certificate or peer authentication).
    owner_password: SecretStr | None = None
    app_password: SecretStr | None = None
    relay_password: SecretStr | None = None
    chain_password: SecretStr | None = None

    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout: float = Field(default=5.0, gt=0)
    pool_recycle: int = Field(default=1800, description="Seconds before a connection is replaced.")
    statement_timeout_ms: int = Field(default=15_000, ge=0)
    connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to open one new connection (TCP, TLS, authentication, setup).",
    )
    command_timeout: float | None = Field(
        default=30.0,
        gt=0,
        description=(
            "Client-side bound in seconds on any one round trip (statement, BEGIN, COMMIT); "
            "holds when the server cannot answer at all. None: no client-side bound."
        ),
    )
    application_name: str = "tenancy"
    pooler: Literal["none", "pgbouncer-transaction"] = Field(
        default="none",
        description="Set to pgbouncer-transaction behind pgbouncer in transaction pooling mode.",
    )
    orm_tenant_filter: bool = Field(
        default=True,
        description="Also add the tenant criterion to ORM queries (a second layer above RLS).",
    )
    tracing: bool = Field(
        default=False,
        description="A span per unit of work through OpenTelemetry (the otel extra).",
    )
    metrics: bool = Field(
        default=False,
        description="Prometheus metrics of units of work and the pool (the metrics extra).",
    )
    metrics_tenant_label: bool = Field(
        default=False,
        description="Also count units of work per tenant (one series per tenant: opt in).",
    )

    def app_url(self) -> URL:
        """Return the application URL as a SQLAlchemy ``URL`` with the asyncpg driver."""
        return async_url(self.database_url)

    def admin_url(self) -> URL:
        """Return the owner/superuser URL, falling back to the application URL."""
        return async_url(self.admin_database_url or self.database_url)

    def role_names(self) -> RoleNames:
        """Return the configured role names.

        Raises:
            ValueError: two of the names are equal.
        """
        return RoleNames(
            owner=self.owner_role,
            app=self.app_role,
            relay=self.relay_role,
            resolver=self.resolver_role,
            chain=self.chain_role,
        )

    def password_of(self, role: str) -> SecretStr | None:
        """Return the configured password of login role ``role``, or ``None`` if unset.

        Raises:
            ValueError: ``role`` is not one of the four login roles.
        """
        names = self.role_names()
        name = names.configured(role)
        passwords = {
            names.owner: self.owner_password,
            names.app: self.app_password,
            names.relay: self.relay_password,
            names.chain: self.chain_password,
        }
        if name not in passwords:
            raise ValueError(f"role {name!r} cannot log in")
        return passwords[name]

    def url_for_role(self, role: str) -> URL:
        """Derive the URL of a login role from the admin URL (same host and database).

        ``role`` is a configured name or a default one (``tenancy_app`` stands for
        the configured app role). The URL carries the role's password only if one
        is configured.

        Raises:
            ValueError: ``role`` is not one of the four login roles.
        """
        password = self.password_of(role)
        admin = self.admin_url()
        # URL.create, not URL.set: set() ignores None, which would keep the admin's password.
        return URL.create(
            admin.drivername,
            username=self.role_names().configured(role),
            password=password.get_secret_value() if password is not None else None,
            host=admin.host,
            port=admin.port,
            database=admin.database,
            query=admin.query,
        )


def async_url(url: str | URL) -> URL:
    """Normalise a Postgres URL to the ``postgresql+asyncpg`` driver."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"tenancy needs PostgreSQL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg")
