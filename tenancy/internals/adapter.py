"""SQLAlchemy's asyncio adapter: the greenlet bridge, Core connections over a checkout, codecs.

The unit of work checks a pooled connection out with SQLAlchemy's synchronous
API (inside a greenlet, as ``AsyncEngine`` does) and builds the Core
connection over that same checkout, so its statements and the driver's share
one connection and one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, PoolProxiedConnection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

ResultT = TypeVar("ResultT")


async def run_sync(fn: Callable[[], ResultT]) -> ResultT:
    """Run ``fn`` where SQLAlchemy's sync API may await the driver (``greenlet_spawn``)."""
    result: ResultT = await greenlet_spawn(fn)
    return result


def connection_over(engine: AsyncEngine, pooled: PoolProxiedConnection) -> AsyncConnection:
    """Return an ``AsyncConnection`` over the already checked-out ``pooled`` connection.

    Built by hand (``Connection(engine, connection=...)``, ``AsyncConnection(engine,
    sync_connection)``): the public API only checks out a new connection.
    Closing it returns ``pooled`` to the pool.
    """
    sync_connection = Connection(engine.sync_engine, connection=pooled)
    return AsyncConnection(engine, sync_connection)


def install_jsonb_codec(dialect: Dialect, setup: Callable[[Any], Awaitable[None]]) -> None:
    """Make ``dialect`` set up ``jsonb`` on each new connection with ``setup``.

    Replaces the asyncpg dialect's ``setup_asyncpg_jsonb_codec`` for this
    dialect instance only; ``setup`` receives SQLAlchemy's adapted connection.
    """
    dialect.setup_asyncpg_jsonb_codec = setup  # type: ignore[attr-defined]


__all__ = ["ResultT", "connection_over", "install_jsonb_codec", "run_sync"]
