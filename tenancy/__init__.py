"""tenancy: a Postgres row-level-security multi-tenant data layer for async services."""

from tenancy.context import (
    current_tenant,
    operation,
    parse_tenant_id,
    require_tenant,
    tenant_context,
    untenanted_context,
)
from tenancy.database import Database
from tenancy.errors import (
    BrokerUnavailable,
    ChainError,
    ConfigurationError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    ForeignKeyViolation,
    IdempotencyKeyReused,
    InvalidData,
    InvalidTenant,
    InvalidTransition,
    IsolationViolation,
    KeySourceUnavailable,
    LastOwnerError,
    NotFound,
    PaymentLinkExhausted,
    PaymentLinkUnavailable,
    PublishError,
    ReadOnlyDatabase,
    RequestRejected,
    RetryableError,
    TenancyError,
    TenantContextRequired,
    TenantForbidden,
    TenantUnresolved,
    TransactionAborted,
    TransactionRejected,
    Unauthenticated,
    UnsafeDatabaseRole,
)
from tenancy.events import DomainEvent
from tenancy.outbox import write_outbox
from tenancy.pagination import KeysetPage, KeysetResult, OffsetPage, PageResult
from tenancy.relay_settings import KafkaSettings, RelaySettings
from tenancy.retry import run_with_retry
from tenancy.settings import TenancySettings
from tenancy.specification import Specification
from tenancy.subscribers import EventBus
from tenancy.version import installed_version

__all__ = [
    "BrokerUnavailable",
    "ChainError",
    "ConfigurationError",
    "Conflict",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "DomainEvent",
    "EventBus",
    "ForeignKeyViolation",
    "IdempotencyKeyReused",
    "InvalidData",
    "InvalidTenant",
    "InvalidTransition",
    "IsolationViolation",
    "KafkaSettings",
    "KeySourceUnavailable",
    "KeysetPage",
    "KeysetResult",
    "LastOwnerError",
    "NotFound",
    "OffsetPage",
    "PageResult",
    "PaymentLinkExhausted",
    "PaymentLinkUnavailable",
    "PublishError",
    "ReadOnlyDatabase",
    "RelaySettings",
    "RequestRejected",
    "RetryableError",
    "Specification",
    "TenancyError",
    "TenancySettings",
    "TenantContextRequired",
    "TenantForbidden",
    "TenantUnresolved",
    "TransactionAborted",
    "TransactionRejected",
    "Unauthenticated",
    "UnsafeDatabaseRole",
    "current_tenant",
    "operation",
    "parse_tenant_id",
    "require_tenant",
    "run_with_retry",
    "tenant_context",
    "untenanted_context",
    "write_outbox",
]

__version__ = installed_version()
