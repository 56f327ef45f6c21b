"""Translating database errors: Postgres SQLSTATE codes and driver errors to ``TenancyError``.

Translation looks at the SQLSTATE and the constraint or column name that Postgres
reports, never at message text, and never copies the server's message (which can
quote row values) into the error a caller sees. The one module of the error
handling that imports the driver (``tenancy.errors`` imports none).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

from tenancy.errors import (
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    ForeignKeyViolation,
    InvalidData,
    IsolationViolation,
    ReadOnlyDatabase,
    RetryableError,
    TenancyError,
    TenantContextRequired,
    TransactionAborted,
)

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
    """The context manager ``translated()`` returns (stateless, so shared).

    Usable with ``with`` and ``async with`` alike (beside an async resource:
    ``async with translated(), engine.begin() as connection``).
    """

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

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


_TRANSLATED = Translated()


def translated() -> Translated:
    """Return a context manager: a database error leaves its block as a ``TenancyError``.

    The one boundary where driver and SQLAlchemy errors become the library's
    (``raise ... from`` the original); errors without a translation pass unchanged.
    """
    return _TRANSLATED


__all__ = ["Translated", "raise_translated", "translate", "translated"]
