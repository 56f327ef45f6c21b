"""The one error hierarchy.

Its translation from Postgres SQLSTATE codes and driver errors lives in
``tenancy.error_translation``, which imports the driver; this module imports
none, and offers ``translate``, ``raise_translated`` and ``translated`` from
there on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenancy.exports import lazy_exports


class TenancyError(Exception):
    """Base of every error this library raises."""


class ConfigurationError(TenancyError):
    """The library is configured or deployed in a way that would be unsafe or cannot work."""


class DistributionRefused(ConfigurationError):
    """A Citus coordinator cannot distribute the schema as it is; ``blockers`` say why."""

    def __init__(self, blockers: list[str]) -> None:
        super().__init__("cannot distribute on Citus: " + "; ".join(blockers))
        self.blockers = blockers


class UnsafeDatabaseRole(ConfigurationError):
    """The connecting role is superuser, BYPASSRLS, or owns tables: RLS would not apply."""


class InvalidTenant(TenancyError):
    """A tenant id is not a valid UUID (empty, malformed, or an injection attempt)."""


class TenantContextRequired(TenancyError):
    """Tenant-scoped work was attempted with no tenant bound."""


class NotFound(TenancyError):
    """The requested row does not exist in the current tenant."""


class Conflict(TenancyError):
    """A unique constraint or an optimistic version check was violated."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class ForeignKeyViolation(TenancyError):
    """A reference points at a row that does not exist in the current tenant."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class InvalidData(TenancyError):
    """A value breaks a check or not-null constraint, or a domain rule."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class IsolationViolation(TenancyError):
    """The database refused an operation by row-level security or privileges (SQLSTATE 42501)."""


class DatabaseUnavailable(TenancyError):
    """The database cannot be reached, or no pooled connection became free in time."""


class RetryableError(TenancyError):
    """A serialization failure, deadlock or lock timeout: the whole transaction may be retried."""


class TransactionAborted(TenancyError):
    """The transaction was aborted by an earlier error; nothing of it was or will be committed.

    Raised by ``commit()`` when Postgres answered COMMIT with ROLLBACK, and by any
    statement run after a caught database error (SQLSTATE 25P02). Use
    ``uow.savepoint()`` around a statement that may fail and be recovered from.
    """


class ReadOnlyDatabase(DatabaseUnavailable):
    """The database accepts no writes (a standby, or ``default_transaction_read_only``)."""


class DatabaseError(TenancyError):
    """A database or driver error with no more specific meaning; ``sqlstate`` when known.

    The message never carries SQL text or parameter values.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class PublishError(TenancyError):
    """A message was not acknowledged by the broker.

    ``retriable`` says whether sending the same message again may succeed
    (a timeout, a leader election) or never will (too large, invalid topic).
    """

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class BrokerUnavailable(PublishError):
    """The broker cannot be reached, or did not answer within the timeout."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=True)


class RequestRejected(TenancyError):
    """A request was refused before reaching the application (answered as problem+json).

    ``org_id`` is the organization the request asked for, when it parsed as a UUID
    (kept for the log; it may be unverified).
    """

    status: int = 400
    problem: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, org_id: object | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.org_id = org_id


class Unauthenticated(RequestRejected):
    """No credentials, or credentials that do not verify (signature, expiry, audience)."""

    status = 401
    problem = "unauthenticated"
    title = "Authentication required"


class TenantUnresolved(RequestRejected):
    """The request names no organization, or one that is not a UUID."""

    status = 400
    problem = "tenant-unresolved"
    title = "Organization missing or malformed"


class TenantForbidden(RequestRejected):
    """The authenticated user is not a member of the requested organization."""

    status = 403
    problem = "tenant-forbidden"
    title = "Not a member of this organization"


class KeySourceUnavailable(RequestRejected):
    """The identity provider's signing keys could not be fetched: try again later (503)."""

    status = 503
    problem = "unavailable"
    title = "Service unavailable"


_EXPORTS = {
    "Translated": "tenancy.error_translation",
    "raise_translated": "tenancy.error_translation",
    "translate": "tenancy.error_translation",
    "translated": "tenancy.error_translation",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from tenancy.error_translation import Translated as Translated
    from tenancy.error_translation import raise_translated as raise_translated
    from tenancy.error_translation import translate as translate
    from tenancy.error_translation import translated as translated
