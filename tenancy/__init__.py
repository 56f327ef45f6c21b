"""tenancy: a Postgres row-level-security multi-tenant data layer for async services."""

from tenancy.context import (
    current_tenant,
    operation,
    parse_tenant_id,
    require_tenant,
    tenant_context,
)
from tenancy.database import Database
from tenancy.errors import (
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    ForeignKeyViolation,
    InvalidData,
    InvalidTenant,
    IsolationViolation,
    NotFound,
    RetryableError,
    TenancyError,
    TenantContextRequired,
    UnsafeDatabaseRole,
)
from tenancy.settings import TenancySettings

__all__ = [
    "ConfigurationError",
    "Conflict",
    "Database",
    "DatabaseUnavailable",
    "ForeignKeyViolation",
    "InvalidData",
    "InvalidTenant",
    "IsolationViolation",
    "NotFound",
    "RetryableError",
    "TenancyError",
    "TenancySettings",
    "TenantContextRequired",
    "UnsafeDatabaseRole",
    "current_tenant",
    "operation",
    "parse_tenant_id",
    "require_tenant",
    "tenant_context",
]
