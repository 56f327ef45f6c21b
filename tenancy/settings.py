"""Settings: one ``BaseSettings`` class, read from ``TENANCY_*`` variables, passed in explicitly."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

#: Role names are fixed because migrations grant to them by name and the policies
#: and audit refer to them; only their passwords are configuration.
OWNER_ROLE = "tenancy_owner"
APP_ROLE = "tenancy_app"
RELAY_ROLE = "tenancy_relay"
RESOLVER_ROLE = "tenancy_resolver"
CHAIN_ROLE = "tenancy_chain"

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
    owner_password: SecretStr = SecretStr("tenancy_owner")
    app_password: SecretStr = SecretStr("tenancy_app")
    relay_password: SecretStr = SecretStr("tenancy_relay")
    chain_password: SecretStr = SecretStr("tenancy_chain")

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

    def app_url(self) -> URL:
        """Return the application URL as a SQLAlchemy ``URL`` with the asyncpg driver."""
        return async_url(self.database_url)

    def admin_url(self) -> URL:
        """Return the owner/superuser URL, falling back to the application URL."""
        return async_url(self.admin_database_url or self.database_url)

    def url_for_role(self, role: str) -> URL:
        """Derive the URL of one of the fixed roles from the admin URL (same host and database)."""
        passwords = {
            OWNER_ROLE: self.owner_password,
            APP_ROLE: self.app_password,
            RELAY_ROLE: self.relay_password,
            CHAIN_ROLE: self.chain_password,
        }
        if role not in passwords:
            raise ValueError(f"no login password is configured for role {role!r}")
        return self.admin_url().set(username=role, password=passwords[role].get_secret_value())


def async_url(url: str | URL) -> URL:
    """Normalise a Postgres URL to the ``postgresql+asyncpg`` driver."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"tenancy needs PostgreSQL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg")
