"""Tenant-scoped sessions: ``SET LOCAL app.org_id`` at the start of every transaction.

Security invariants kept here:

* The tenant is written with ``SET LOCAL``, so it ends with the transaction
  (commit, rollback or error) and never survives on a pooled connection.
* ``SET`` takes no bind parameters, so the value is a literal. It is written only
  after ``uuid.UUID`` parsed it, which admits nothing but hex digits and dashes.
  The literal ``SET LOCAL`` form is also the one Citus propagates to its workers
  (``set_config()`` is not).
* A session without a tenant cannot begin a transaction at all (fail closed).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction

from tenancy.context import TENANT_KEY, session_tenant
from tenancy.db.connection import TenantConnection
from tenancy.errors import ConfigurationError
from tenancy.schema.declarative import is_tenant_owned


def set_local_statement(org_id: uuid.UUID) -> str:
    """Return the ``SET LOCAL`` statement for an already-parsed tenant id."""
    if not isinstance(org_id, uuid.UUID):
        # Only a parsed UUID may reach the literal; see the module docstring.
        raise TypeError("org_id must be a uuid.UUID")
    return _set_local_for(org_id.int)


@functools.lru_cache(maxsize=4096)
def _set_local_for(value: int) -> str:
    # Rendered from the 128-bit value, so a UUID subclass's own __str__ never
    # reaches SQL. Cached: every unit of work of a busy tenant needs the same text.
    return f"SET LOCAL app.org_id = '{uuid.UUID(int=value)}'"


class TenantAwareSession(Session):
    """A ``Session`` working for one tenant for its whole life (``info[TENANT_KEY]``)."""


class TenantSession(TenantAwareSession):
    """A tenant session that owns its transactions and sets the tenant on each."""


class JoinedSession(TenantAwareSession):
    """A tenant session joined to a unit of work's transaction, which set the tenant."""


@event.listens_for(TenantSession, "after_begin")
def _set_tenant(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    # Runs once per connection at the start of every session transaction,
    # including each new one after commit or rollback.
    statement = set_local_statement(session_tenant(session))
    driver = connection.connection.driver_connection
    if isinstance(driver, TenantConnection) and not driver.is_in_transaction():
        # The BEGIN has not gone out yet: send SET LOCAL with it (one round trip).
        driver.begin_with(statement)
    else:
        connection.exec_driver_sql(statement)


@event.listens_for(TenantAwareSession, "before_flush")
def _fill_org_id(session: Session, flush_context: UOWTransaction, instances: Any) -> None:
    # Callers never pass org_id; RLS WITH CHECK still verifies what is written.
    org_id = session_tenant(session)
    for obj in session.new:
        if is_tenant_owned(type(obj)) and getattr(obj, "org_id", None) is None:
            obj.org_id = org_id


async def session_driver(session: AsyncSession) -> TenantConnection:
    """Return the driver connection of ``session``'s transaction, with BEGIN sent.

    Raises:
        ConfigurationError: the session's engine was not made by ``create_engine``.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if not isinstance(driver, TenantConnection):
        raise ConfigurationError("the session's engine was not created by tenancy.db.engine")
    if not driver.is_in_transaction():
        # SQLAlchemy's adapter sends BEGIN (with the tenant) before its first
        # statement; a trivial one makes it do so through its own bookkeeping and
        # error handling, so the transaction is never started behind its back.
        await connection.exec_driver_sql("SELECT 1")
    return driver


def tenant_sessionmaker(
    engine: AsyncEngine, *, session_class: type[TenantSession] = TenantSession
) -> async_sessionmaker[AsyncSession]:
    """Return a session factory whose sessions set the tenant on every transaction."""
    return async_sessionmaker(
        engine,
        sync_session_class=session_class,
        expire_on_commit=False,
        autoflush=False,
    )


def open_session(
    factory: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    *,
    bind: AsyncEngine | None = None,
) -> AsyncSession:
    """Create a session for the parsed tenant ``org_id`` (optionally on another engine)."""
    if bind is not None:
        return factory(info={TENANT_KEY: org_id}, bind=bind)
    return factory(info={TENANT_KEY: org_id})
