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
    IdempotencyKeyReused,
    InvalidData,
    InvalidTenant,
    InvalidTransition,
    IsolationViolation,
    LastOwnerError,
    NotFound,
    PaymentLinkExhausted,
    PaymentLinkUnavailable,
    RequestRejected,
    RetryableError,
    TenancyError,
    TenantContextRequired,
    TenantForbidden,
    TenantUnresolved,
    Unauthenticated,
    UnsafeDatabaseRole,
)
from tenancy.events import DomainEvent
from tenancy.pagination import KeysetPage, KeysetResult, OffsetPage, PageResult
from tenancy.retry import run_with_retry
from tenancy.settings import TenancySettings
from tenancy.specification import Specification
from tenancy.subscribers import EventBus

__all__ = [
    "ConfigurationError",
    "Conflict",
    "Database",
    "DatabaseUnavailable",
    "DomainEvent",
    "EventBus",
    "ForeignKeyViolation",
    "IdempotencyKeyReused",
    "InvalidData",
    "InvalidTenant",
    "InvalidTransition",
    "IsolationViolation",
    "KeysetPage",
    "KeysetResult",
    "LastOwnerError",
    "NotFound",
    "OffsetPage",
    "PageResult",
    "PaymentLinkExhausted",
    "PaymentLinkUnavailable",
    "RequestRejected",
    "RetryableError",
    "Specification",
    "TenancyError",
    "TenancySettings",
    "TenantContextRequired",
    "TenantForbidden",
    "TenantUnresolved",
    "Unauthenticated",
    "UnsafeDatabaseRole",
    "current_tenant",
    "operation",
    "parse_tenant_id",
    "require_tenant",
    "run_with_retry",
    "tenant_context",
]
