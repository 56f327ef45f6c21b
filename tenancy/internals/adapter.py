"""SQLAlchemy's asyncio adapter: the greenlet bridge, Core connections over a checkout, codecs.

The unit of work checks a pooled connection out with SQLAlchemy's synchronous
API and builds the Core connection over that same checkout, so its statements
and the driver's share one connection and one transaction.

``AsyncEngine`` runs the synchronous pool inside a greenlet (``greenlet_spawn``)
so that it may await the driver. Taking an idle connection from a queue pool,
and giving one back while the queue has room, await nothing: ``run_pool_step``
then calls the function directly, which costs a unit of work about a fifth of
a get's client CPU less (``bench.fast_path_costs``). If the pool must reach the
driver after all (a connection to recycle, to replace after a failed check, or
a listener that awaits), ``MissingGreenlet`` is raised at that first await, the
pool is left consistent (the entry back in the queue, invalidated, or the
overflow count restored), and the step is run again inside the greenlet.
Opening a connection is refused before the driver's coroutine is even created
(``connect_only_in_greenlet``): SQLAlchemy 2.1 would otherwise leave asyncpg's
``connect`` coroutine never awaited. An asyncpg connection terminated outside a
greenlet is closed at once, without the graceful close it gets inside one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, PoolProxiedConnection, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.concurrency import in_greenlet

ResultT = TypeVar("ResultT")


async def run_pool_step(fn: Callable[[], ResultT], *, direct: bool) -> ResultT:
    """Run the pool step ``fn`` directly if ``direct``, else (or if it must await) in a greenlet.

    ``direct`` is the caller's claim that ``fn`` needs no driver I/O
    (``idle_connection_waiting``, ``room_to_check_in``); a wrong claim costs the
    greenlet, never consistency (see the module docstring).
    """
    if direct:
        try:
            return fn()
        except MissingGreenlet:
            pass
    result: ResultT = await greenlet_spawn(fn)
    return result


def connect_only_in_greenlet(engine: AsyncEngine) -> None:
    """Make ``engine`` refuse to open a connection outside a greenlet (``MissingGreenlet``).

    A ``do_connect`` listener, run before the dialect builds the driver's
    ``connect`` coroutine; inside a greenlet it lets the dialect connect as usual.
    """

    def refuse_outside_greenlet(*_: Any) -> None:
        if not in_greenlet():
            raise MissingGreenlet("a new connection is opened inside greenlet_spawn")

    event.listen(engine.sync_engine, "do_connect", refuse_outside_greenlet)


def idle_connection_waiting(engine: AsyncEngine) -> bool:
    """Whether ``engine``'s queue pool holds an idle connection (a checkout need not connect)."""
    pool = engine.sync_engine.pool
    return isinstance(pool, QueuePool) and pool.checkedin() > 0


def room_to_check_in(engine: AsyncEngine) -> bool:
    """Whether a connection given back to ``engine``'s queue pool is kept, not closed."""
    pool = engine.sync_engine.pool
    return isinstance(pool, QueuePool) and pool.checkedin() < pool.size()


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


__all__ = [
    "ResultT",
    "connect_only_in_greenlet",
    "connection_over",
    "idle_connection_waiting",
    "install_jsonb_codec",
    "room_to_check_in",
    "run_pool_step",
]
