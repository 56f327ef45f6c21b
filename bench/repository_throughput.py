"""Operations per second: tenancy repositories vs plain ORM vs raw asyncpg, side by side.

(a) this project's unit of work and repositories, as the app role under RLS;
(b) plain SQLAlchemy ORM sessions on an identical table without RLS or tenancy;
(c) raw asyncpg doing the same tenant transaction (BEGIN; SET LOCAL; query; COMMIT),
    the reference, on an ``asyncpg.Pool`` with its defaults;
(c0) the same on a pool whose release skips asyncpg's reset query (``reset=``): one
    round trip less per operation than (c), shown for comparison (``a/c0``).

``list50_read`` is (a) through the typed read path (``AsyncRepository.read`` into a
frozen dataclass) against the same (b) and (c) as ``list50``; ``list50_prepared``
is the read path with a prepared specification (built once, bound per call:
``Specification.bind``), where the others build the filter expression every call.
``add_outbox`` is ``add_commit`` with (c) writing what the library writes besides
the row: its created event in the outbox, in the same statement, and the relay's
NOTIFY with the COMMIT ((b), plain ORM, writes no event in either).

Each operation runs for ``--seconds`` at concurrency ``--concurrency`` for every
variant in turn, in one process against one database; prints the figures and the
ratios a/b and a/c (medians over interleaved rounds, each round's ratio taken
from figures measured seconds apart, with the range of a/b), and writes them
as JSON.

    python -m bench.repository_throughput --seconds 1 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import DateTime, String, bindparam, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.database import bench_database
from bench.throughput import ops_per_second
from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from tenancy import TenancySettings
from tenancy.events.outbox import OUTBOX_CHANNEL
from tenancy.pagination import KeysetPage
from tenancy.schema.declarative import utcnow
from tenancy.specification import Specification

VARIANTS = ("a", "b", "c", "c0")

#: The hand-written add of ``add_outbox``: the customer and its created event.
ADD_WITH_EVENT = (
    "WITH event AS (INSERT INTO outbox_events (org_id, id, aggregate_type, aggregate_id,"
    " event_type, payload, position, occurred_at, available_at)"
    " VALUES ($4, $5, 'customer', $7, 'CustomerCreated', $6::jsonb, 0,"
    " clock_timestamp(), clock_timestamp()))"
    " INSERT INTO customers (id, email, created_at) VALUES ($1, $2, $3)"
)
TENANTS = 16
ROWS_PER_TENANT = 500


class PlainBase(DeclarativeBase):
    """Models of the comparison table: no tenancy, no RLS."""


class PlainCustomer(PlainBase):
    """Mapped to ``plain_customers``: a copy of ``customers`` without tenancy."""

    __tablename__ = "plain_customers"

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Set in Python, as ``Customer.created_at`` is (tenancy.schema.declarative.utcnow).
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class CustomerRow:
    """The read path's row type: every column of ``customers``, immutable."""

    org_id: uuid.UUID
    id: uuid.UUID
    email: str
    name: str
    attributes: dict[str, Any]
    created_at: datetime


Op = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]


async def add_with_event_by_hand(conn: asyncpg.Connection, org: uuid.UUID) -> None:
    """What the library's add and commit send, by hand, in an open tenant transaction.

    The customer and its created event in one statement, then the relay's wake-up
    in the COMMIT's message.
    """
    customer_id, email, created_at = uuid.uuid4(), f"{uuid.uuid4().hex}@new.example", utcnow()
    payload = {"email": email, "name": "", "attributes": {}, "org_id": str(org)}
    payload |= {"id": str(customer_id), "created_at": created_at.isoformat()}
    await conn.execute(
        ADD_WITH_EVENT,
        customer_id,
        email,
        created_at,
        org,
        uuid.uuid4(),
        json.dumps(payload),
        str(customer_id),
    )
    await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}; COMMIT")


async def run_for(
    seconds: float, concurrency: int, op: Op, keys: list[tuple[uuid.UUID, uuid.UUID]]
) -> float:
    """Run ``op`` on random keys from ``concurrency`` workers for ``seconds``; return ops/s."""
    return await ops_per_second(lambda rng: op(*rng.choice(keys)), seconds, concurrency)


async def seed(settings: TenancySettings, admin_dsn: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Fill ``customers`` (through the library) and ``plain_customers`` with the same rows."""
    db = await PlatformDatabase.connect(settings)
    keys: list[tuple[uuid.UUID, uuid.UUID]] = []
    for t in range(TENANTS):
        org_id = uuid.uuid4()
        async with db.session(org_id) as session:
            session.add(Organization(id=org_id, name=f"bench {t}"))
            await session.flush()
            for i in range(ROWS_PER_TENANT):
                row = Customer(email=f"c{i}@t{t}.example", name=f"Customer {i}")
                session.add(row)
                await session.flush()
                keys.append((org_id, row.id))
    await db.dispose()
    admin = await asyncpg.connect(admin_dsn)
    # Identical to customers: columns, defaults, checks, keys and indexes (LIKE ...
    # INCLUDING ALL); what it lacks is tenancy: RLS, policies and the foreign key
    # to organizations.
    await admin.execute("CREATE TABLE plain_customers (LIKE customers INCLUDING ALL)")
    await admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON plain_customers TO tenancy_app")
    await admin.execute("INSERT INTO plain_customers SELECT * FROM customers")
    await admin.execute("ANALYZE")
    await admin.close()
    return keys


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/repository_throughput.json")
    )
    args = parser.parse_args()

    async with bench_database(pool_size=16, max_overflow=0) as settings:
        admin_dsn = str(settings.admin_url().set(drivername="postgresql"))
        app_dsn = str(
            settings.app_url().set(drivername="postgresql").render_as_string(hide_password=False)
        )
        keys = await seed(settings, admin_dsn)
        db = await PlatformDatabase.connect(
            settings.model_copy(update={"pool_size": args.concurrency})
        )
        plain_engine = create_async_engine(
            settings.app_url(), pool_size=args.concurrency, max_overflow=0
        )
        plain_sessions = async_sessionmaker(plain_engine, expire_on_commit=False)
        pool = await asyncpg.create_pool(
            app_dsn, min_size=args.concurrency, max_size=args.concurrency
        )

        async def no_reset(_: asyncpg.Connection) -> None:
            """Nothing to undo: the transaction's SET LOCAL ended with it."""

        bare_pool = await asyncpg.create_pool(
            app_dsn, min_size=args.concurrency, max_size=args.concurrency, reset=no_reset
        )
        prepared = Specification[Customer](Customer.name.like(bindparam("pattern")))

        def spec() -> Specification[Customer]:
            return Specification[Customer](Customer.name.like("Customer 1%"))

        async def a_get(org: uuid.UUID, row: uuid.UUID) -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.get(row)

        async def b_get(org: uuid.UUID, row: uuid.UUID) -> None:
            async with plain_sessions() as session:
                await session.get(PlainCustomer, (org, row))

        def c_get(over: asyncpg.Pool) -> Op:
            async def get(org: uuid.UUID, row: uuid.UUID) -> None:
                async with over.acquire() as conn:
                    await conn.execute(f"BEGIN; SET LOCAL app.org_id = '{org}'")
                    await conn.fetchrow("SELECT * FROM customers WHERE id = $1", row)
                    await conn.execute("COMMIT")

            return get

        async def a_list(org: uuid.UUID, row: uuid.UUID) -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.list(spec(), page=KeysetPage(limit=50))

        async def a_read(org: uuid.UUID, row: uuid.UUID) -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.read(CustomerRow, spec(), page=KeysetPage(limit=50))

        async def a_read_prepared(org: uuid.UUID, row: uuid.UUID) -> None:
            async with db.unit_of_work(org) as uow:
                bound = prepared.bind(pattern="Customer 1%")
                await uow.customers.read(CustomerRow, bound, page=KeysetPage(limit=50))

        async def b_list(org: uuid.UUID, row: uuid.UUID) -> None:
            async with plain_sessions() as session:
                stmt = (
                    select(PlainCustomer)
                    .where(PlainCustomer.org_id == org, PlainCustomer.name.like("Customer 1%"))
                    .order_by(PlainCustomer.created_at, PlainCustomer.id)
                    .limit(51)
                )
                (await session.execute(stmt)).scalars().all()

        def c_list(over: asyncpg.Pool) -> Op:
            async def list_(org: uuid.UUID, row: uuid.UUID) -> None:
                async with over.acquire() as conn:
                    await conn.execute(f"BEGIN; SET LOCAL app.org_id = '{org}'")
                    await conn.fetch(
                        "SELECT * FROM customers WHERE name LIKE $1"
                        " ORDER BY created_at, id LIMIT 51",
                        "Customer 1%",
                    )
                    await conn.execute("COMMIT")

            return list_

        async def a_add(org: uuid.UUID, row: uuid.UUID) -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@new.example"))
                await uow.commit()

        async def b_add(org: uuid.UUID, row: uuid.UUID) -> None:
            async with plain_sessions() as session:
                session.add(PlainCustomer(org_id=org, email=f"{uuid.uuid4().hex}@new.example"))
                await session.commit()

        def c_add(over: asyncpg.Pool) -> Op:
            async def add(org: uuid.UUID, row: uuid.UUID) -> None:
                async with over.acquire() as conn:
                    await conn.execute(f"BEGIN; SET LOCAL app.org_id = '{org}'")
                    await conn.execute(
                        "INSERT INTO customers (id, email) VALUES ($1, $2)",
                        uuid.uuid4(),
                        f"{uuid.uuid4().hex}@new.example",
                    )
                    await conn.execute("COMMIT")

            return add

        def c_add_outbox(over: asyncpg.Pool) -> Op:
            async def add(org: uuid.UUID, row: uuid.UUID) -> None:
                async with over.acquire() as conn:
                    await conn.execute(f"BEGIN; SET LOCAL app.org_id = '{org}'")
                    await add_with_event_by_hand(conn, org)

            return add

        results: dict[str, dict[str, Any]] = {}
        for name, ops in {
            "get": (a_get, b_get, c_get(pool), c_get(bare_pool)),
            "list50": (a_list, b_list, c_list(pool), c_list(bare_pool)),
            "list50_read": (a_read, b_list, c_list(pool), c_list(bare_pool)),
            "list50_prepared": (a_read_prepared, b_list, c_list(pool), c_list(bare_pool)),
            "add_commit": (a_add, b_add, c_add(pool), c_add(bare_pool)),
            "add_outbox": (a_add, b_add, c_add_outbox(pool), c_add_outbox(bare_pool)),
        }.items():
            for op in ops:
                await run_for(0.3, args.concurrency, op, keys)  # warm caches and pools
            # Interleaved rounds, so that drifting machine load hits every variant alike;
            # each round's ratios come from figures measured seconds apart.
            rounds: list[dict[str, float]] = []
            for _ in range(args.rounds):
                measured = {
                    variant: await run_for(args.seconds, args.concurrency, op, keys)
                    for variant, op in zip(VARIANTS, ops, strict=True)
                }
                measured["a/b"] = measured["a"] / measured["b"]
                measured["a/c"] = measured["a"] / measured["c"]
                measured["a/c0"] = measured["a"] / measured["c0"]
                rounds.append(measured)
            figures: dict[str, Any] = {
                key: statistics.median(r[key] for r in rounds) for key in rounds[0]
            }
            figures["a/b range"] = [min(r["a/b"] for r in rounds), max(r["a/b"] for r in rounds)]
            figures["rounds"] = rounds
            results[name] = figures
            print(
                f"{name:15s} a={figures['a']:6.0f}/s b={figures['b']:6.0f}/s"
                f" c={figures['c']:6.0f}/s c0={figures['c0']:6.0f}/s  a/b={figures['a/b']:.2f}"
                f" ({figures['a/b range'][0]:.2f}-{figures['a/b range'][1]:.2f})"
                f"  a/c={figures['a/c']:.2f}  a/c0={figures['a/c0']:.2f}",
                flush=True,
            )
        await pool.close()
        await bare_pool.close()
        await plain_engine.dispose()
        await db.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"concurrency": args.concurrency, "results": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
