"""A plain tenant ``AsyncSession`` as a repository's transaction source.

Repositories run on one interface (``TransactionSource``): inside a unit of
work the unit of work is the source, and a repository built over a session
(``CustomerRepository(session)``) gets this adapter. The session owns its
transaction and sends ``BEGIN`` with the tenant itself; it collects no events:
the repositories keep what they hand out (``seen``), and ``write_outbox``
writes the events the caller gathers from them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from repositories.source import EventCollector
from tenancy.context import session_tenant
from tenancy.db.connection import TenantConnection
from tenancy.db.identity import adopt, adopt_all
from tenancy.db.session import session_driver


class SessionSource:
    """``TransactionSource`` over a tenant ``AsyncSession``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def org_id(self) -> uuid.UUID:
        """The session's tenant.

        Raises:
            TenantContextRequired: the session has no tenant.
        """
        return session_tenant(self.session.sync_session)

    @property
    def event_collector(self) -> EventCollector | None:
        """``None``: a plain session collects no events."""
        return None

    @property
    def dialect(self) -> Dialect:
        """The dialect of the session's bind (the engine's)."""
        return self.session.sync_session.get_bind().dialect

    def adopt_inserted(self, obj: Any) -> Any:
        """Make a just-inserted instance persistent in the session (no SQL)."""
        return adopt(self.session.sync_session, obj)

    def adopt_all(self, objs: list[Any]) -> list[Any]:
        """Make read instances persistent in the session (no SQL)."""
        return adopt_all(self.session.sync_session, objs)

    async def core_connection(self) -> AsyncConnection:
        """The session's connection, inside its transaction."""
        return await self.session.connection()

    async def driver(self) -> TenantConnection:
        """The driver connection of the session's transaction, with BEGIN sent."""
        return await session_driver(self.session)
