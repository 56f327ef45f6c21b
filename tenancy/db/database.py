"""``Database``: the entry point a service holds, built once in its composition root."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, Literal, Self, cast

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from typing_extensions import TypeVar

from tenancy.context import current_tenant, parse_tenant_id, tenant_context
from tenancy.db.engine import create_engine, verify_role
from tenancy.db.orm_filter import filtered_joined_session_class, filtered_session_class
from tenancy.db.pool_gate import PoolGate
from tenancy.db.session import JoinedSession, TenantSession, open_session, tenant_sessionmaker
from tenancy.db.unit_of_work import EventDispatcher, UnitOfWork
from tenancy.errors import DatabaseUnavailable, TenantContextRequired, translated
from tenancy.log import get_logger
from tenancy.observability.observer import UnitOfWorkObserver
from tenancy.observability.setup import observers_for
from tenancy.settings import TenancySettings

logger = get_logger(__name__)

IsolationLevel = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]

#: The unit of work a ``Database`` hands out; ``Database`` alone means the base one.
UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork, default=UnitOfWork)


class Database(Generic[UnitOfWorkT]):
    """Tenant-scoped access to one Postgres database as the application role.

    Generic over the unit of work ``unit_of_work()`` returns. A service with its
    own repositories declares them on a ``UnitOfWork`` subclass and names it::

        class AcmeDatabase(Database[AcmeUnitOfWork]):
            unit_of_work_class = AcmeUnitOfWork
    """

    #: The class ``unit_of_work()`` instantiates; a subclass names its own.
    unit_of_work_class: type[UnitOfWork] = UnitOfWork

    def __init__(
        self,
        engine: AsyncEngine,
        settings: TenancySettings,
        *,
        dispatcher: EventDispatcher | None = None,
        observer: UnitOfWorkObserver | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        #: Told about every unit of work (traces, metrics); from the settings by default.
        self.observer = observer if observer is not None else observers_for(settings, engine)
        # The ORM tenant filter is a second layer above RLS, on by default.
        filtered = settings.orm_tenant_filter
        self.sessionmaker: async_sessionmaker[AsyncSession] = tenant_sessionmaker(
            engine, session_class=filtered_session_class() if filtered else TenantSession
        )
        self._joined_session_class = filtered_joined_session_class() if filtered else JoinedSession
        self.dispatcher = dispatcher
        # Waiters for a connection are served first come, first served.
        self.gate = PoolGate(settings.pool_size + settings.max_overflow)

    @classmethod
    async def connect(
        cls,
        settings: TenancySettings,
        *,
        check_role: bool = True,
        dispatcher: EventDispatcher | None = None,
    ) -> Self:
        """Create the engine from ``settings`` and verify the role is safe to use.

        Raises:
            UnsafeDatabaseRole: the role would bypass row-level security.
            DatabaseUnavailable: the database cannot be reached.
        """
        engine = create_engine(settings)
        if check_role:
            try:
                await verify_role(engine, expected=settings.app_role)
            except BaseException:
                await engine.dispose()
                raise
        return cls(engine, settings, dispatcher=dispatcher)

    def unit_of_work(
        self, org_id: object | None = None, *, isolation_level: IsolationLevel | None = None
    ) -> UnitOfWorkT:
        """Return a unit of work for ``org_id`` (or the bound tenant); use ``async with``.

        ``isolation_level`` (e.g. ``"SERIALIZABLE"``) applies to its transactions;
        pair stricter levels with ``run_with_retry``.

        Raises:
            InvalidTenant: ``org_id`` is not a UUID (no SQL is run).
            TenantContextRequired: no tenant given or bound (no SQL is run).
        """
        unit_of_work = self.unit_of_work_class(
            self.engine,
            self.resolve_tenant(org_id),
            dispatcher=self.dispatcher,
            session_class=self._joined_session_class,
            isolation_level=isolation_level,
            gate=self.gate,
            checkout_timeout=self.settings.pool_timeout,
            observer=self.observer,
        )
        # The class attribute and the type parameter are declared together.
        return cast(UnitOfWorkT, unit_of_work)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    @asynccontextmanager
    async def tenant(self, org_id: object) -> AsyncIterator[uuid.UUID]:
        """Bind ``org_id`` as the current tenant for the enclosed block.

        Raises:
            InvalidTenant: ``org_id`` is not a UUID; nothing is bound.
        """
        with tenant_context(org_id) as parsed:
            yield parsed

    def resolve_tenant(self, org_id: object | None) -> uuid.UUID:
        """Return ``org_id`` parsed, or the bound tenant when it is ``None``.

        Raises:
            InvalidTenant: ``org_id`` is given but not a UUID.
            TenantContextRequired: no ``org_id`` and no tenant bound.
        """
        if org_id is not None:
            return parse_tenant_id(org_id)
        bound = current_tenant()
        if bound is None:
            raise TenantContextRequired("no tenant is bound: use db.tenant(org_id) or pass org_id")
        return bound

    @asynccontextmanager
    async def session(self, org_id: object | None = None) -> AsyncIterator[AsyncSession]:
        """Open one transaction for a tenant; commit on success, roll back on error.

        The tenant is ``org_id`` or else the one bound by ``tenant()``. Database errors
        leave as ``TenancyError`` subclasses.

        Raises:
            InvalidTenant: ``org_id`` is not a UUID (no SQL is run).
            TenantContextRequired: no tenant given or bound (no SQL is run).
        """
        parsed = self.resolve_tenant(org_id)
        session = open_session(self.sessionmaker, parsed)
        await self._enter_gate()
        # Bound for the block, so that log records (refusals included) name the tenant.
        try:
            with tenant_context(parsed):
                try:
                    with translated():
                        async with session.begin():
                            yield session
                finally:
                    await session.close()
        finally:
            self.gate.release()

    async def _enter_gate(self) -> None:
        try:
            async with asyncio.timeout(self.settings.pool_timeout):
                await self.gate.acquire()
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                "no database connection became free within the pool timeout"
            ) from exc
