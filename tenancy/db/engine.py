"""The one place that creates engines, and the role self-check run before first use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tenancy.db.connection import TenantConnection
from tenancy.db.json_codec import decode_json, setup_jsonb_codec
from tenancy.errors import InvalidData, UnsafeDatabaseRole, translated
from tenancy.internals import (
    connect_only_in_greenlet,
    install_jsonb_codec,
    quiet_cancelled_tls_negotiation,
)
from tenancy.settings import APP_ROLE, TenancySettings

_ROLE_CHECK = text(
    """
    SELECT r.rolname,
           r.rolsuper,
           r.rolbypassrls,
           EXISTS (
               SELECT 1 FROM pg_roles AS m
               WHERE m.oid <> r.oid
                 AND pg_has_role(r.oid, m.oid, 'MEMBER')
                 AND (m.rolsuper OR m.rolbypassrls)
           ) AS can_become_privileged,
           (
               SELECT count(*) FROM pg_class AS c
               JOIN pg_namespace AS n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg_toast%'
                 AND pg_has_role(r.oid, c.relowner, 'MEMBER')
           ) AS owned_relations
    FROM pg_roles AS r
    WHERE r.rolname = current_user
    """
)


def create_engine(settings: TenancySettings, url: URL | None = None) -> AsyncEngine:
    """Create the async engine for ``url`` (default: the app URL) with the pool settings.

    No connection is opened here; nothing happens at import time either.
    """
    connect_args: dict[str, Any] = {
        "connection_class": TenantConnection,
        "server_settings": {
            "application_name": settings.application_name,
            "statement_timeout": str(settings.statement_timeout_ms),
        },
    }
    if settings.pooler == "pgbouncer-transaction":
        # pgbouncer in transaction mode hands each transaction to any server
        # connection: a named prepared statement may be missing there, or exist under
        # the same name from another client. So no statement cache (asyncpg's nor
        # SQLAlchemy's) and unnamed statements only, which live within one
        # transaction; and no startup parameters pgbouncer would refuse.
        connect_args = {
            "connection_class": TenantConnection,
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: "",
            "server_settings": {"application_name": settings.application_name},
        }
    # Client-side bounds: they hold when the server cannot answer at all (frozen,
    # partitioned), where statement_timeout, enforced by the server, cannot.
    connect_args["timeout"] = settings.connect_timeout
    connect_args["command_timeout"] = settings.command_timeout
    # A connect cancelled mid-handshake (a client gone, a timeout) must not log an error.
    quiet_cancelled_tls_negotiation()
    engine = create_async_engine(
        url or settings.app_url(),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=False,
        # Errors and logs must not quote statement values (emails, hashes, ...).
        hide_parameters=True,
        connect_args=connect_args,
        json_deserializer=decode_json,
    )
    # A per-engine override of the dialect's codec hook (see json_codec).
    install_jsonb_codec(engine.dialect, setup_jsonb_codec)
    # Units of work take idle connections without a greenlet; opening one needs it.
    connect_only_in_greenlet(engine)
    # A tenant statement left pending by a transaction that never ran a query
    # must not reach the next user of the pooled connection.
    event.listen(engine.sync_engine.pool, "checkout", _check_settled)
    event.listen(engine.sync_engine.pool, "checkin", _clear_pending)
    event.listen(engine.sync_engine, "before_cursor_execute", _before_statement)
    if settings.pooler == "pgbouncer-transaction":
        # The statement timeout cannot travel as a startup parameter through
        # pgbouncer; it rides with every BEGIN instead (transaction-local too).
        prelude = f"SET LOCAL statement_timeout = {int(settings.statement_timeout_ms)}"
        event.listen(
            engine.sync_engine,
            "connect",
            lambda dbapi_connection, record: _set_prelude(record, prelude),
        )
    return engine


def _set_prelude(connection_record: Any, prelude: str) -> None:
    driver = getattr(connection_record, "driver_connection", None)
    if isinstance(driver, TenantConnection):
        driver.begin_always_with(prelude)


def _clear_pending(dbapi_connection: Any, connection_record: Any, *args: Any) -> None:
    driver = getattr(connection_record, "driver_connection", None)
    if isinstance(driver, TenantConnection):
        driver.clear_pending()


def _check_settled(dbapi_connection: Any, connection_record: Any, *args: Any) -> None:
    # The pool hands a connection out only if it is known to be idle outside any
    # transaction. One whose last BEGIN, COMMIT or ROLLBACK never got its answer
    # (cancelled, timed out) or that the server still sees in a transaction may
    # carry another tenant's SET LOCAL: the pool discards it and connects anew
    # (raising DisconnectionError here is SQLAlchemy's documented way to do that).
    # A connection found closed (server restart) is replaced the same way, before
    # anything is sent on it.
    driver = getattr(connection_record, "driver_connection", None)
    if isinstance(driver, TenantConnection):
        if not driver.settled or driver.is_in_transaction():
            raise exc.DisconnectionError("connection not idle outside a transaction")
        driver.clear_pending()


#: The protocol's limit: the number of parameters is sent as a 16-bit integer.
MAX_PARAMETERS = 32_767


def _before_statement(
    connection: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    # The driver's own error for too many parameters says nothing typed: refuse
    # before sending.
    if not executemany and parameters is not None and len(parameters) > MAX_PARAMETERS:
        raise InvalidData(
            f"a statement may carry at most {MAX_PARAMETERS} parameters, "
            f"this one has {len(parameters)}: split the value list"
        )
    # A unit of work arms its next transaction instead of sending BEGIN at once;
    # a Core or ORM statement run on its connection opens it first (BEGIN; SET
    # LOCAL in one message), so no statement of a unit of work runs outside its
    # tenant transaction. run_async is SQLAlchemy's public way to await the
    # driver from inside its synchronous core.
    adapted = connection.connection.dbapi_connection
    driver = getattr(adapted, "driver_connection", None)
    if isinstance(driver, TenantConnection) and driver.armed:
        adapted.run_async(lambda armed: armed.begin_armed())


def rls_bypass_problems(
    *, superuser: bool, bypassrls: bool, privileged_member: bool, owned: int
) -> list[str]:
    """Return why row-level security would not bind a role with these attributes (empty: it does).

    Shared by the start-up self-check and ``tenancy audit``.
    """
    problems = []
    if superuser:
        problems.append("is a superuser, so row-level security does not apply")
    if bypassrls:
        problems.append("has BYPASSRLS")
    if privileged_member:
        problems.append("is a member of a superuser or BYPASSRLS role")
    if owned:
        problems.append(f"owns {owned} object(s); it must own nothing")
    return problems


async def verify_role(engine: AsyncEngine, *, expected: str = APP_ROLE) -> None:
    """Refuse to run as a role for which row-level security would not apply.

    ``expected`` names the role the engine should use, for the error message.

    Raises:
        UnsafeDatabaseRole: the role is superuser or BYPASSRLS, can become one, or owns
            relations (owners skip RLS unless it is forced, and can switch it off).
        DatabaseUnavailable: the database cannot be reached.
    """
    with translated():
        async with engine.connect() as connection:
            row = (await connection.execute(_ROLE_CHECK)).one()
    problems = rls_bypass_problems(
        superuser=row.rolsuper,
        bypassrls=row.rolbypassrls,
        privileged_member=row.can_become_privileged,
        owned=row.owned_relations,
    )
    if problems:
        raise UnsafeDatabaseRole(
            f"refusing to run as role {row.rolname!r}: it {', '.join(problems)}; "
            f"row-level security would not isolate tenants. Connect as {expected}."
        )
