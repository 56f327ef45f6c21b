"""``ChainDatabase``: the chain-wide jobs' tenant-less connection, as ``tenancy_chain``.

The deposit scan and the confirmation pass need a few things that no tenant
owns: a chain's scan position and stored block hashes (``chain_checkpoints``,
``chain_blocks``), and which tenants a chain's addresses and unsettled
transactions belong to (``resolve_wallet``, ``unsettled_wallet_tenants``). They
reach them here, as ``tenancy_chain``, whose grants stop there. The application
role cannot list a chain's tenants; what the jobs write for a tenant still goes
through ``Database.unit_of_work``, under that tenant's row-level security.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine

from repositories.wallets.chain_store import ChainStore
from tenancy.db.engine import create_engine, verify_role
from tenancy.errors import translated
from tenancy.settings import TenancySettings


class ChainDatabase:
    """Tenant-less access to the chain tables and the chain resolvers, as the chain role."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def connect(cls, settings: TenancySettings, *, check_role: bool = True) -> Self:
        """Create the chain role's engine from ``settings`` and verify the role is safe.

        The URL is the admin URL's host and database (the app URL's when no admin
        URL is set) with the chain role and ``chain_password``. The role must be
        neither superuser nor BYPASSRLS and own nothing, like the app role: it
        never binds a tenant, so RLS must leave every tenant table empty to it.

        Raises:
            UnsafeDatabaseRole: the role would bypass row-level security.
            DatabaseUnavailable: the database cannot be reached.
        """
        engine = create_engine(settings, url=settings.url_for_role(settings.chain_role))
        if check_role:
            try:
                await verify_role(engine, expected=settings.chain_role)
            except BaseException:
                await engine.dispose()
                raise
        return cls(engine)

    @asynccontextmanager
    async def store(self, chain: str) -> AsyncIterator[ChainStore]:
        """Open one transaction and yield ``chain``'s ``ChainStore`` on it.

        Commits when the block ends normally, rolls back on an exception; locks
        taken through the store (``lock_checkpoint``) last until then.

        Raises:
            TenancyError: a database error, translated (e.g. ``DatabaseUnavailable``).
        """
        with translated():
            async with self.engine.begin() as connection:
                yield ChainStore(connection, chain)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
