"""The one error hierarchy, and its translation from Postgres SQLSTATE codes.

Translation looks at the SQLSTATE and the constraint or column name that Postgres
reports, never at message text, and never copies the server's message (which can
quote row values) into the error a caller sees.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

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


_UNAVAILABLE_CLASSES = ("08", "53", "57P")


def translate(exc: BaseException) -> TenancyError | None:
    """Map a SQLAlchemy/asyncpg exception to a ``TenancyError``, or ``None`` if it is not ours.

    Every error raised by the database, the driver or SQLAlchemy's adapter has a
    translation; the fallback, ``DatabaseError``, names the SQLSTATE or the error
    type and never copies the driver's message (it may quote SQL or values).
    """
    if isinstance(exc, TenancyError):
        return exc
    if isinstance(exc, StaleDataError):
        # An ORM update or delete of a versioned row matched nothing: someone else
        # changed it since it was read (optimistic concurrency).
        return Conflict("a row was changed by someone else (stale version)")
    if isinstance(exc, PoolTimeoutError):
        return DatabaseUnavailable("no database connection became free within the pool timeout")
    if isinstance(exc, TimeoutError):
        # asyncpg's client-side command_timeout or connect timeout (a caller's own
        # asyncio.timeout reaches the library as a cancellation, not as this).
        return DatabaseUnavailable("the database did not answer in time")
    if isinstance(exc, (ConnectionError, OSError)):
        return DatabaseUnavailable(f"database unreachable: {type(exc).__name__}")
    driver_exc = _driver_exception(exc)
    if driver_exc is None:
        return None
    if isinstance(driver_exc, asyncpg.PostgresError):
        sqlstate = driver_exc.sqlstate
        translated = _from_sqlstate(
            sqlstate,
            getattr(driver_exc, "constraint_name", None),
            getattr(driver_exc, "column_name", None),
        )
        return translated or DatabaseError(
            f"database error (SQLSTATE {sqlstate})", sqlstate=sqlstate
        )
    if isinstance(driver_exc, asyncpg.ConnectionDoesNotExistError) or isinstance(
        exc, (OperationalError, InterfaceError)
    ):
        return DatabaseUnavailable(f"database unreachable: {type(driver_exc).__name__}")
    if isinstance(driver_exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        # The driver's client-side errors say the connection cannot be used now
        # (closed, lost mid-operation, or out of step). The unit of work discards
        # such a connection, so a retry gets a fresh one.
        return DatabaseUnavailable(
            f"the database connection is unusable ({type(driver_exc).__name__})"
        )
    if isinstance(driver_exc, (ConnectionError, OSError)):
        return translate(driver_exc)
    sqlstate = getattr(driver_exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        translated = _from_sqlstate(sqlstate, None, None)
        if translated is not None:
            return translated
    return DatabaseError(f"database driver error ({type(driver_exc).__name__})", sqlstate=sqlstate)


def _from_sqlstate(
    sqlstate: str, constraint: str | None, column: str | None
) -> TenancyError | None:
    if sqlstate in ("23505", "23P01"):
        # A unique key, or an exclusion constraint (a value held elsewhere).
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
    if sqlstate == "23514" or sqlstate.startswith("22"):
        return InvalidData(
            f"value rejected by the database ({constraint or sqlstate})", constraint=constraint
        )
    if sqlstate == "54000":
        return InvalidData("statement exceeds a database limit (SQLSTATE 54000)")
    if sqlstate == "42501":
        return IsolationViolation("refused by row-level security or missing privilege")
    if sqlstate in ("40001", "40P01"):
        return RetryableError(f"transaction must be retried (SQLSTATE {sqlstate})")
    if sqlstate == "55P03":
        return RetryableError("a lock was not available in time (SQLSTATE 55P03)")
    if sqlstate == "25P02":
        return TransactionAborted(
            "the transaction was aborted by an earlier error; roll back (or use a savepoint)"
        )
    if sqlstate == "25006":
        return ReadOnlyDatabase("the database is read-only (SQLSTATE 25006)")
    if sqlstate == "3D000":
        # invalid_catalog_name: the database named in the URL does not exist. For the
        # caller it is as unreachable as a server that is down.
        return DatabaseUnavailable("the database does not exist (SQLSTATE 3D000)")
    if sqlstate == "57014":
        return DatabaseUnavailable("statement timed out or was cancelled")
    if sqlstate.startswith(_UNAVAILABLE_CLASSES):
        return DatabaseUnavailable(f"database unavailable (SQLSTATE {sqlstate})")
    return None


def _driver_exception(exc: BaseException) -> BaseException | None:
    # The error that carries the structured fields (sqlstate, constraint_name,
    # column_name): asyncpg's own, found under SQLAlchemy's DBAPIError (``orig``)
    # and under the adapter's error class (its ``__cause__``). None: the error did
    # not come from the database layer at all.
    if isinstance(exc, DBAPIError):
        orig: BaseException | None = exc.orig
        return _driver_exception(orig) if orig is not None else exc
    if isinstance(
        exc, asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError
    ):
        found: BaseException = exc
        return found
    if _is_adapter_error(exc):
        cause = exc.__cause__
        return cause if cause is not None and _driver_exception(cause) is not None else exc
    return None


def _is_adapter_error(exc: BaseException) -> bool:
    # SQLAlchemy's asyncpg adapter raises its own DBAPI-style classes (Error,
    # InternalClientError, ...) when it is driven outside a Connection; they are
    # PEP 249 errors: a module-level ``Error`` class of the adapter module.
    return any(
        klass.__name__ == "Error" and "sqlalchemy" in klass.__module__
        for klass in type(exc).__mro__
    )


def raise_translated(exc: BaseException) -> None:
    """Re-raise ``exc`` as its ``TenancyError`` translation if it has one; otherwise do nothing."""
    translated = translate(exc)
    if translated is not None and translated is not exc:
        # Imported here: tenancy.log depends on this module. Each database error is
        # translated once, so each refusal is logged once, with the tenant context.
        from tenancy.log import log_refusal

        log_refusal(translated)
        raise translated from exc


class Translated(AbstractContextManager[None]):
    """The context manager ``translated()`` returns (stateless, so shared)."""

    __slots__ = ()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Exceptions only: cancellation and exits pass unchanged.
        if isinstance(exc, Exception):
            raise_translated(exc)


_TRANSLATED = Translated()


def translated() -> Translated:
    """Return a context manager: a database error leaves its block as a ``TenancyError``.

    The one boundary where driver and SQLAlchemy errors become the library's
    (``raise ... from`` the original); errors without a translation pass unchanged.
    """
    return _TRANSLATED


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
