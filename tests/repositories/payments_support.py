"""Helpers of the catalog and payment repository tests: rows to start from, lock waits, events."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from repositories import PlatformDatabase
from repositories.models import Agent, Customer, Price, Product
from repositories.unit_of_work import PlatformUnitOfWork
from tenancy import Database
from tenancy.events.domain_event import DomainEvent

#: How long a test waits for a concurrent transaction to block on a row lock.
LOCK_WAIT_TIMEOUT = 10.0


class RecordingDispatcher:
    """Collects the events that committed units of work hand over."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def dispatch(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)

    def of_type(self, event_type: type[DomainEvent]) -> list[Any]:
        """Return the recorded events of exactly ``event_type``, in order."""
        return [e for e in self.events if type(e) is event_type]


def recording(db: Database, dispatcher: RecordingDispatcher) -> Database:
    """Return a ``Database`` on the same engine whose commits report to ``dispatcher``."""
    return PlatformDatabase(db.engine, db.settings, dispatcher=dispatcher)


async def new_price(
    uow: PlatformUnitOfWork, currency: str = "USD", unit_amount: int = 1000
) -> Price:
    """Create a product with one active price in the unit of work's tenant."""
    product = await uow.products.add(Product(name="Plan", sku=secrets.token_hex(6)))
    return await uow.prices.change_price(product.id, currency, unit_amount)


async def new_customer(uow: PlatformUnitOfWork, email: str | None = None) -> Customer:
    """Create a customer in the unit of work's tenant."""
    address = email or f"{secrets.token_hex(5)}@example.com"
    return await uow.customers.add(Customer(email=address))


async def new_agent(uow: PlatformUnitOfWork) -> Agent:
    """Create an agent in the unit of work's tenant."""
    return await uow.agents.add(Agent(name="buyer-bot"))


async def backend_pid(session: AsyncSession) -> int:
    """Return the server process id behind ``session``'s transaction."""
    return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def wait_until_blocked(engine: AsyncEngine, pid: int) -> None:
    """Wait until backend ``pid`` is waiting for a lock held by another transaction.

    Raises:
        TimeoutError: it did not block within ``LOCK_WAIT_TIMEOUT`` seconds.
    """
    query = text("SELECT cardinality(pg_blocking_pids(:pid)) > 0")
    async with asyncio.timeout(LOCK_WAIT_TIMEOUT):
        while True:
            # A fresh transaction each time: lock and activity views are snapshots.
            async with engine.connect() as connection:
                if (await connection.execute(query, {"pid": pid})).scalar_one():
                    return
            await asyncio.sleep(0.01)


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[str]]:
    """Record the SQL text of every statement ``engine`` sends inside the block."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def random_id() -> uuid.UUID:
    """Return an id no row has."""
    return uuid.uuid4()
