"""tenancy: a Postgres row-level-security multi-tenant data layer for async services.

Names are imported on first use (``tenancy.exports``).
"""

from typing import TYPE_CHECKING

from tenancy.exports import lazy_exports

_EXPORTS = {
    "Base": "tenancy.schema.declarative",
    "BrokerUnavailable": "tenancy.errors",
    "ConfigurationError": "tenancy.errors",
    "Conflict": "tenancy.errors",
    "Database": "tenancy.db.database",
    "DatabaseError": "tenancy.errors",
    "DatabaseUnavailable": "tenancy.errors",
    "DomainEvent": "tenancy.events.domain_event",
    "EventBus": "tenancy.events.bus",
    "ForeignKeyViolation": "tenancy.errors",
    "InvalidData": "tenancy.errors",
    "InvalidTenant": "tenancy.errors",
    "IsolationViolation": "tenancy.errors",
    "KafkaSettings": "tenancy.relay.settings",
    "KeySourceUnavailable": "tenancy.errors",
    "KeysetPage": "tenancy.pagination",
    "KeysetResult": "tenancy.pagination",
    "NotFound": "tenancy.errors",
    "OffsetPage": "tenancy.pagination",
    "PageResult": "tenancy.pagination",
    "PublishError": "tenancy.errors",
    "ReadOnlyDatabase": "tenancy.errors",
    "RelaySettings": "tenancy.relay.settings",
    "RepositoryAttribute": "tenancy.db.repository_attribute",
    "RequestRejected": "tenancy.errors",
    "RetryableError": "tenancy.errors",
    "Specification": "tenancy.specification",
    "TenancyError": "tenancy.errors",
    "TenancySettings": "tenancy.settings",
    "TenantContextRequired": "tenancy.errors",
    "TenantForbidden": "tenancy.errors",
    "TenantOwned": "tenancy.schema.declarative",
    "TenantUnresolved": "tenancy.errors",
    "TransactionAborted": "tenancy.errors",
    "Unauthenticated": "tenancy.errors",
    "UnitOfWork": "tenancy.db.unit_of_work",
    "UnsafeDatabaseRole": "tenancy.errors",
    "current_tenant": "tenancy.context",
    "installed_version": "tenancy.version",
    "__version__": "tenancy.version",
    "operation": "tenancy.context",
    "parse_tenant_id": "tenancy.context",
    "require_tenant": "tenancy.context",
    "run_with_retry": "tenancy.retry",
    "tenant_context": "tenancy.context",
    "untenanted_context": "tenancy.context",
    "write_outbox": "tenancy.events.outbox",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from tenancy.context import current_tenant as current_tenant
    from tenancy.context import operation as operation
    from tenancy.context import parse_tenant_id as parse_tenant_id
    from tenancy.context import require_tenant as require_tenant
    from tenancy.context import tenant_context as tenant_context
    from tenancy.context import untenanted_context as untenanted_context
    from tenancy.db.database import Database as Database
    from tenancy.db.repository_attribute import RepositoryAttribute as RepositoryAttribute
    from tenancy.db.unit_of_work import UnitOfWork as UnitOfWork
    from tenancy.errors import BrokerUnavailable as BrokerUnavailable
    from tenancy.errors import ConfigurationError as ConfigurationError
    from tenancy.errors import Conflict as Conflict
    from tenancy.errors import DatabaseError as DatabaseError
    from tenancy.errors import DatabaseUnavailable as DatabaseUnavailable
    from tenancy.errors import ForeignKeyViolation as ForeignKeyViolation
    from tenancy.errors import InvalidData as InvalidData
    from tenancy.errors import InvalidTenant as InvalidTenant
    from tenancy.errors import IsolationViolation as IsolationViolation
    from tenancy.errors import KeySourceUnavailable as KeySourceUnavailable
    from tenancy.errors import NotFound as NotFound
    from tenancy.errors import PublishError as PublishError
    from tenancy.errors import ReadOnlyDatabase as ReadOnlyDatabase
    from tenancy.errors import RequestRejected as RequestRejected
    from tenancy.errors import RetryableError as RetryableError
    from tenancy.errors import TenancyError as TenancyError
    from tenancy.errors import TenantContextRequired as TenantContextRequired
    from tenancy.errors import TenantForbidden as TenantForbidden
    from tenancy.errors import TenantUnresolved as TenantUnresolved
    from tenancy.errors import TransactionAborted as TransactionAborted
    from tenancy.errors import Unauthenticated as Unauthenticated
    from tenancy.errors import UnsafeDatabaseRole as UnsafeDatabaseRole
    from tenancy.events.bus import EventBus as EventBus
    from tenancy.events.domain_event import DomainEvent as DomainEvent
    from tenancy.events.outbox import write_outbox as write_outbox
    from tenancy.pagination import KeysetPage as KeysetPage
    from tenancy.pagination import KeysetResult as KeysetResult
    from tenancy.pagination import OffsetPage as OffsetPage
    from tenancy.pagination import PageResult as PageResult
    from tenancy.relay.settings import KafkaSettings as KafkaSettings
    from tenancy.relay.settings import RelaySettings as RelaySettings
    from tenancy.retry import run_with_retry as run_with_retry
    from tenancy.schema.declarative import Base as Base
    from tenancy.schema.declarative import TenantOwned as TenantOwned
    from tenancy.settings import TenancySettings as TenancySettings
    from tenancy.specification import Specification as Specification
    from tenancy.version import __version__ as __version__
    from tenancy.version import installed_version as installed_version

__all__ = [
    "Base",
    "BrokerUnavailable",
    "ConfigurationError",
    "Conflict",
    "Database",
    "DatabaseError",
    "DatabaseUnavailable",
    "DomainEvent",
    "EventBus",
    "ForeignKeyViolation",
    "InvalidData",
    "InvalidTenant",
    "IsolationViolation",
    "KafkaSettings",
    "KeySourceUnavailable",
    "KeysetPage",
    "KeysetResult",
    "NotFound",
    "OffsetPage",
    "PageResult",
    "PublishError",
    "ReadOnlyDatabase",
    "RelaySettings",
    "RepositoryAttribute",
    "RequestRejected",
    "RetryableError",
    "Specification",
    "TenancyError",
    "TenancySettings",
    "TenantContextRequired",
    "TenantForbidden",
    "TenantOwned",
    "TenantUnresolved",
    "TransactionAborted",
    "Unauthenticated",
    "UnitOfWork",
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
