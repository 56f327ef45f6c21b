"""Where a repository operation's client CPU goes: a ladder of steps, each against asyncpg.

``repository_throughput`` runs at concurrency 16 on a machine whose cores the
server shares, so its ratios follow the client's CPU per operation. This script
runs one operation at a time on one connection and reports the client process's
CPU time per operation (``time.process_time``, best of ``--repeats``) for a
ladder of steps, each paired with the hand-written asyncpg equivalent:

* ``acquire``: a unit of work entered and left (pool checkout and check-in,
  nothing sent) against ``asyncpg.Pool.acquire`` without its reset query, then with it;
* ``begin``: the same with the tenant transaction opened and rolled back;
* ``get``, ``read 50`` (fresh or prepared filter), ``list 50``, ``add + commit``:
  the operations of ``repository_throughput``.

The pieces that have no asyncpg counterpart (building a filter and its cache
key, turning 51 rows into dataclasses or ORM instances, decoding their JSON,
the keyset cursor, an aggregate's created event) are timed on their own, in a
hot loop, as a lower bound of what they cost inside an operation.

    python -m bench.fast_path_costs --operations 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import timeit
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import bindparam

from bench.database import bench_database
from bench.repository_throughput import CustomerRow, add_with_event_by_hand, seed
from repositories import PlatformDatabase
from repositories.email_address import normalize_email
from repositories.models import Customer
from repositories.row_mapper import row_mapper
from repositories.typed_rows import row_builder
from tenancy.db.json_codec import decode_json
from tenancy.internals import cache_key
from tenancy.pagination import KeysetPage, encode_cursor
from tenancy.specification import Specification

Step = Callable[[], Awaitable[None]]


async def cpu_per_call(step: Step, calls: int, repeats: int) -> float:
    """Return the client's CPU microseconds per call of ``step`` (best of ``repeats``)."""
    for _ in range(min(calls, 300)):
        await step()
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            await step()
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best


def hot_cost(fn: Callable[[], Any], calls: int = 20_000) -> float:
    """Return microseconds per call of ``fn`` in a hot loop (best of five)."""
    return min(timeit.repeat(fn, number=calls, repeat=5)) / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=3000, help="per step and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--without-command-timeout",
        action="store_true",
        help="run the library without its client-side bound per round trip (asyncpg has none)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/fast_path_costs.json"))
    args = parser.parse_args()

    options: dict[str, Any] = {"pool_size": 2, "max_overflow": 0}
    if args.without_command_timeout:
        options["command_timeout"] = None
    async with bench_database(**options) as settings:
        admin_dsn = str(settings.admin_url().set(drivername="postgresql"))
        app_dsn = str(
            settings.app_url().set(drivername="postgresql").render_as_string(hide_password=False)
        )
        keys = await seed(settings, admin_dsn)
        org, row_id = keys[0]
        db = await PlatformDatabase.connect(settings)

        async def no_reset(_: asyncpg.Connection) -> None:
            """Nothing to undo: the transaction's SET LOCAL ended with it."""

        pool = await asyncpg.create_pool(app_dsn, min_size=1, max_size=1)
        bare = await asyncpg.create_pool(app_dsn, min_size=1, max_size=1, reset=no_reset)
        prepared = Specification[Customer](Customer.name.like(bindparam("pattern")))
        begin = f"BEGIN; SET LOCAL app.org_id = '{org}'"
        list_sql = "SELECT * FROM customers WHERE name LIKE $1 ORDER BY created_at, id LIMIT 51"

        def fresh() -> Specification[Customer]:
            return Specification[Customer](Customer.name.like("Customer 1%"))

        async def uow_empty() -> None:
            async with db.unit_of_work(org):
                pass

        async def pg_acquire() -> None:
            async with bare.acquire():
                pass

        async def pg_acquire_reset() -> None:
            async with pool.acquire():
                pass

        async def uow_begin() -> None:
            async with db.unit_of_work(org) as uow:
                await uow.driver()

        async def pg_begin() -> None:
            async with bare.acquire() as conn:
                await conn.execute(begin)
                await conn.execute("ROLLBACK")

        async def uow_get() -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.get(row_id)

        async def pg_get() -> None:
            async with bare.acquire() as conn:
                await conn.execute(begin)
                await conn.fetchrow("SELECT * FROM customers WHERE id = $1", row_id)
                await conn.execute("COMMIT")

        async def uow_read_prepared() -> None:
            async with db.unit_of_work(org) as uow:
                spec = prepared.bind(pattern="Customer 1%")
                await uow.customers.read(CustomerRow, spec, page=KeysetPage(limit=50))

        async def uow_read_fresh() -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.read(CustomerRow, fresh(), page=KeysetPage(limit=50))

        async def uow_list() -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.list(fresh(), page=KeysetPage(limit=50))

        async def pg_list() -> None:
            async with bare.acquire() as conn:
                await conn.execute(begin)
                await conn.fetch(list_sql, "Customer 1%")
                await conn.execute("COMMIT")

        async def uow_add() -> None:
            async with db.unit_of_work(org) as uow:
                await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@new.example"))
                await uow.commit()

        async def pg_add() -> None:
            async with bare.acquire() as conn:
                await conn.execute(begin)
                await conn.execute(
                    "INSERT INTO customers (id, email) VALUES ($1, $2)",
                    uuid.uuid4(),
                    f"{uuid.uuid4().hex}@new.example",
                )
                await conn.execute("COMMIT")

        async def pg_add_outbox() -> None:
            async with bare.acquire() as conn:
                await conn.execute(begin)
                await add_with_event_by_hand(conn, org)

        ladder = {
            "acquire": (uow_empty, pg_acquire),
            "acquire (asyncpg's reset query)": (uow_empty, pg_acquire_reset),
            "begin + rollback": (uow_begin, pg_begin),
            "get": (uow_get, pg_get),
            "read 50, prepared filter": (uow_read_prepared, pg_list),
            "read 50, fresh filter": (uow_read_fresh, pg_list),
            "list 50 (ORM), fresh filter": (uow_list, pg_list),
            "add + commit": (uow_add, pg_add),
            "add + commit, asyncpg writes the event": (uow_add, pg_add_outbox),
        }
        results: dict[str, Any] = {"ladder": {}, "pieces": {}}
        print(f"{'step':40s} {'library':>9s} {'asyncpg':>9s} {'extra':>8s}  (client CPU µs/op)")
        for name, (library, reference) in ladder.items():
            ours = await cpu_per_call(library, args.operations, args.repeats)
            theirs = await cpu_per_call(reference, args.operations, args.repeats)
            results["ladder"][name] = {"library": ours, "asyncpg": theirs}
            print(f"{name:40s} {ours:9.1f} {theirs:9.1f} {ours - theirs:8.1f}", flush=True)

        async with bare.acquire() as conn:
            await conn.execute(begin)
            rows = await conn.fetch(list_sql, "Customer 1%")
            await conn.execute("ROLLBACK")
        mapper = row_mapper(Customer, db.engine.dialect)
        builder = row_builder(CustomerRow, mapper.load_keys)
        documents = [json.dumps(r["attributes"]) for r in rows]
        last = rows[-1]
        pieces: dict[str, Callable[[], Any]] = {
            "filter expression (Customer.name.like)": fresh,
            "filter expression + its cache key": lambda: cache_key(fresh().to_clause()),
            "prepared filter bound": lambda: prepared.bind(pattern="Customer 1%"),
            "51 rows -> frozen dataclasses": lambda: builder.build_all(rows, mapper.conversions),
            "51 rows -> ORM instances (no session)": lambda: mapper.materialize_all(
                rows, processed=False
            ),
            "51 jsonb values decoded": lambda: [decode_json(d) for d in documents],
            # The default order's keys: created_at, then id.
            "keyset cursor of the last row": lambda: encode_cursor(
                [last["created_at"], last["id"]]
            ),
            "email checked and normalised": lambda: normalize_email("someone@new.example"),
        }
        print(f"\n{'piece (hot loop, lower bound)':50s} {'µs':>7s}")
        for name, fn in pieces.items():
            cost = hot_cost(fn, 2_000 if "51" in name else 20_000)
            results["pieces"][name] = cost
            print(f"{name:50s} {cost:7.1f}", flush=True)

        await pool.close()
        await bare.close()
        await db.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
