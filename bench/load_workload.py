"""The load script's workload: workers that mix reads, spec queries and writes per tenant.

Each worker acts for one tenant. Every operation is one unit of work; the time
to get a connection (``await uow.session.connection()``, the pool checkout:
``SET LOCAL`` rides along with the first statement) is recorded as pool wait.
Every row read is checked to carry the worker's own ``org_id``.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from repositories.models import Customer, Organization, Product
from tenancy import Database, DatabaseUnavailable
from tenancy.pagination import OffsetPage
from tenancy.specification import Specification

NAMES = ("alpha", "beta", "gamma", "delta")
#: Share of operations by kind; the rest are writes.
READ_SHARE = 0.6
SPEC_SHARE = 0.2


@dataclass(frozen=True)
class Tenant:
    """A seeded organization and the ids of rows that stay there for the whole run."""

    org_id: uuid.UUID
    customers: tuple[uuid.UUID, ...]
    products: tuple[uuid.UUID, ...]


@dataclass
class Metrics:
    """What all workers observed in one run."""

    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"read": [], "spec": [], "write": []}
    )
    pool_waits: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    pool_timeouts: int = 0
    isolation_violations: int = 0
    rows_checked: int = 0

    def check(self, org_id: uuid.UUID, rows: list[Any]) -> None:
        """Count every row read, and every one that belongs to another tenant."""
        self.rows_checked += len(rows)
        self.isolation_violations += sum(1 for row in rows if row.org_id != org_id)


async def seed(db: Database, tenants: int, rows: int) -> list[Tenant]:
    """Create ``tenants`` organizations with ``rows`` customers and products each."""
    seeded = []
    for index in range(tenants):
        org_id = uuid.uuid4()
        async with db.session(org_id) as session:
            session.add(Organization(id=org_id, name=f"load-{index}"))
        async with db.unit_of_work(org_id) as uow:
            customers = [
                Customer(email=f"{uuid.uuid4().hex}@load.test", name=random.choice(NAMES))
                for _ in range(rows)
            ]
            products = [Product(name=random.choice(NAMES)) for _ in range(rows)]
            await uow.customers.add_many(customers)
            await uow.products.add_many(products)
            await uow.commit()
        seeded.append(Tenant(org_id, tuple(c.id for c in customers), tuple(p.id for p in products)))
    return seeded


async def _read(uow: Any, tenant: Tenant, metrics: Metrics) -> None:
    one = await uow.customers.get(random.choice(tenant.customers))
    page = await uow.products.list(page=OffsetPage(limit=20))
    metrics.check(tenant.org_id, [one, *page.items])


async def _spec(uow: Any, tenant: Tenant, metrics: Metrics) -> None:
    name = random.choice(NAMES)
    spec = Specification[Customer](Customer.name == name) & Specification[Customer](
        Customer.email.like("%@load.test")
    )
    found = await uow.customers.list(spec, order_by=["-created_at"], page=OffsetPage(limit=10))
    metrics.check(tenant.org_id, found.items)


async def _write(uow: Any, tenant: Tenant, metrics: Metrics) -> None:
    if random.random() < 0.5:
        await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@load.test", name="new"))
    else:
        product = await uow.products.update(
            random.choice(tenant.products), {"name": random.choice(NAMES)}
        )
        metrics.check(tenant.org_id, [product])
    await uow.commit()


def error_kind(exc: BaseException) -> str:
    """Return a grouping key for ``exc``: its type, SQLSTATE and first message line."""
    orig = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    first_line = str(exc).split("\n", 1)[0]
    # Generated names (prepared statements, ids) would make every error unique.
    first_line = re.sub(r"[0-9a-f]{16,}|[0-9a-f-]{36}", "*", first_line)[:120]
    return f"{type(exc).__name__} [{sqlstate or '-'}]: {first_line}"


OPERATIONS = {"read": _read, "spec": _spec, "write": _write}


def _pick() -> str:
    draw = random.random()
    return "read" if draw < READ_SHARE else "spec" if draw < READ_SHARE + SPEC_SHARE else "write"


async def worker(db: Database, tenant: Tenant, deadline: float, metrics: Metrics) -> None:
    """Run operations for ``tenant`` until ``deadline`` (``time.monotonic``)."""
    while time.monotonic() < deadline:
        kind = _pick()
        started = time.perf_counter()
        try:
            async with db.unit_of_work(tenant.org_id) as uow:
                await uow.session.connection()
                metrics.pool_waits.append(time.perf_counter() - started)
                await OPERATIONS[kind](uow, tenant, metrics)
        except DatabaseUnavailable as exc:
            if isinstance(exc.__cause__, PoolTimeoutError):
                metrics.pool_timeouts += 1  # back-pressure, by design
            else:
                metrics.errors[error_kind(exc)] += 1
            continue
        except Exception as exc:  # every other failure is counted, none is hidden
            metrics.errors[error_kind(exc)] += 1
            continue
        metrics.latencies[kind].append(time.perf_counter() - started)
        # Yield between operations, as a server does between requests. Without it a
        # worker that just returned its connection takes it straight back, ahead of
        # the workers already waiting, and those starve until the pool timeout.
        await asyncio.sleep(0)


async def run_load(
    db: Database, tenants: list[Tenant], *, workers: int, seconds: float, grace: float
) -> tuple[Metrics, float]:
    """Run ``workers`` workers over ``tenants`` for ``seconds``; return metrics and elapsed time.

    Raises:
        TimeoutError: the workers did not stop within ``seconds + grace``.
    """
    metrics = Metrics()
    started = time.monotonic()
    deadline = started + seconds
    tasks = [worker(db, tenants[i % len(tenants)], deadline, metrics) for i in range(workers)]
    async with asyncio.timeout(seconds + grace):
        await asyncio.gather(*tasks)
    return metrics, time.monotonic() - started
