"""The one error hierarchy, and its translation from Postgres SQLSTATE codes.

Translation looks at the SQLSTATE and the constraint or column name that Postgres
reports, never at message text, and never copies the server's message (which can
quote row values) into the error a caller sees.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError


class TenancyError(Exception):
    """Base of every error this library raises."""


class ConfigurationError(TenancyError):
    """The library is configured or deployed in a way that would be unsafe or cannot work."""


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
    """A serialization failure or deadlock: the whole transaction may be retried."""


class ChainError(TenancyError):
    """The chain node could not be reached or answered something unusable."""


class TransactionRejected(ChainError):
    """The chain node refused a transaction (insufficient funds, bad nonce, ...)."""


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


_UNAVAILABLE_CLASSES = ("08", "53", "57P")


def translate(exc: BaseException) -> TenancyError | None:
    """Map a SQLAlchemy/asyncpg exception to a ``TenancyError``, or ``None`` if it is not ours."""
    if isinstance(exc, TenancyError):
        return exc
    if isinstance(exc, StaleDataError):
        # An ORM update or delete of a versioned row matched nothing: someone else
        # changed it since it was read (optimistic concurrency).
        return Conflict("a row was changed by someone else (stale version)")
    if isinstance(exc, PoolTimeoutError):
        return DatabaseUnavailable("no database connection became free within the pool timeout")
    if isinstance(exc, (ConnectionError, OSError)):
        return DatabaseUnavailable(f"database unreachable: {type(exc).__name__}")
    if isinstance(exc, asyncpg.PostgresError):
        # Raised directly by the driver on the repositories' hot paths.
        return _from_sqlstate(
            exc.sqlstate,
            getattr(exc, "constraint_name", None),
            getattr(exc, "column_name", None),
        )
    if isinstance(exc, asyncpg.ConnectionDoesNotExistError):
        return DatabaseUnavailable("the database connection was lost")
    if not isinstance(exc, DBAPIError):
        return None
    driver_exc = _driver_exception(exc)
    sqlstate: str | None = getattr(driver_exc, "sqlstate", None) or getattr(
        exc.orig, "sqlstate", None
    )
    constraint: str | None = getattr(driver_exc, "constraint_name", None)
    column: str | None = getattr(driver_exc, "column_name", None)
    if sqlstate is None:
        if isinstance(exc, (OperationalError, InterfaceError)) or isinstance(
            driver_exc, (ConnectionError, OSError)
        ):
            return DatabaseUnavailable(f"database unreachable: {type(driver_exc).__name__}")
        return None
    return _from_sqlstate(sqlstate, constraint, column)


def _from_sqlstate(
    sqlstate: str, constraint: str | None, column: str | None
) -> TenancyError | None:
    if sqlstate == "23505":
        return Conflict(f"duplicate value violates {constraint}", constraint=constraint)
    if sqlstate == "23503":
        return ForeignKeyViolation(
            f"foreign key {constraint} violated: the referenced row does not exist in this "
            "tenant, or the row is still referenced",
            constraint=constraint,
        )
    if sqlstate == "23502":
        if column == "org_id":
            return TenantContextRequired("no tenant is bound, so org_id has no value")
        return InvalidData(f"column {column} must not be null", constraint=column)
    # Class 22 is "data exception": a bad value (NUL byte, out-of-range date, division by
    # zero...). Left untranslated, the driver's error would quote the statement's values.
    if sqlstate in ("23514", "23P01") or sqlstate.startswith("22"):
        return InvalidData(
            f"value rejected by the database ({constraint or sqlstate})", constraint=constraint
        )
    if sqlstate == "42501":
        return IsolationViolation("refused by row-level security or missing privilege")
    if sqlstate in ("40001", "40P01"):
        return RetryableError(f"transaction must be retried (SQLSTATE {sqlstate})")
    if sqlstate == "57014":
        return DatabaseUnavailable("statement timed out or was cancelled")
    if sqlstate.startswith(_UNAVAILABLE_CLASSES):
        return DatabaseUnavailable(f"database unavailable (SQLSTATE {sqlstate})")
    return None


def _driver_exception(exc: DBAPIError) -> Any:
    # SQLAlchemy's asyncpg adapter wraps the asyncpg exception; the wrapped one
    # carries the structured fields (constraint_name, column_name).
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    return cause if cause is not None and hasattr(cause, "sqlstate") else orig


def raise_translated(exc: BaseException) -> None:
    """Re-raise ``exc`` as its ``TenancyError`` translation if it has one; otherwise do nothing."""
    translated = translate(exc)
    if translated is not None and translated is not exc:
        # Imported here: tenancy.log depends on this module. Each database error is
        # translated once, so each refusal is logged once, with the tenant context.
        from tenancy.log import log_refusal

        log_refusal(translated)
        raise translated from exc


class PaymentLinkExhausted(Conflict):
    """A payment link has already been used its maximum number of times."""


class PaymentLinkUnavailable(Conflict):
    """A payment link is inactive or expired, so it cannot be used."""


class IdempotencyKeyReused(Conflict):
    """An idempotency key was sent again with different order parameters."""


class InvalidTransition(InvalidData):
    """A status change the lifecycle does not allow (e.g. ``refunded`` -> ``paid``)."""


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


class LastOwnerError(Conflict):
    """The change would leave the organization without an owner."""
