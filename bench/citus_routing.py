"""The cost of routing: the library on one node and on a local Citus cluster, side by side.

Starts two throwaway PostgreSQL 15 setups on this machine: one plain node and a
Citus coordinator with two workers (``tests.citus.cluster``), each with the same
settings, migrates the library on both (``tenancy migrate``: on the coordinator
the tenant tables are distributed by ``org_id``), fills ``customers`` alike, then
runs the tenant read, the list of 50 and add + commit (with its outbox event)
through the unit of work, in interleaved rounds. On one machine the cluster
cannot be faster: the point is what routing a tenant's statements to its worker
costs. Needs the Citus extension (``../shared/citus/install.sh``) and root (the
nodes run as ``postgres``).

    python -m bench.citus_routing --seconds 2 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import URL

from bench.throughput import ops_per_second
from repositories import PlatformDatabase
from repositories.models import Customer, Organization
from tenancy import KeysetPage, Specification
from tenancy.schema.migration import upgrade
from tenancy.schema.throwaway_database import app_settings
from tests.citus.cluster import CitusCluster
from tests.faults.server import FaultServer

DBNAME = "tenancy_bench"
TENANTS = 20
ROWS_PER_TENANT = 100
Keys = list[tuple[uuid.UUID, uuid.UUID]]
Op = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]


def _single_node() -> tuple[FaultServer, URL]:
    node = FaultServer(prefix="tenancy-bench-")
    node.init()
    node.start()
    return node, node.create_database(DBNAME)


async def _seed(db: PlatformDatabase) -> Keys:
    keys: Keys = []
    for t in range(TENANTS):
        org_id = uuid.uuid4()
        async with db.session(org_id) as session:
            session.add(Organization(id=org_id, name=f"bench {t}"))
            await session.flush()
            rows = [
                Customer(email=f"c{i}@t{t}.example", name=f"Customer {i}")
                for i in range(ROWS_PER_TENANT)
            ]
            session.add_all(rows)
            await session.flush()
            keys.extend((org_id, row.id) for row in rows)
    return keys


def _operations(db: PlatformDatabase) -> dict[str, Op]:
    async def get(org: uuid.UUID, row: uuid.UUID) -> None:
        async with db.unit_of_work(org) as uow:
            await uow.customers.get(row)

    async def list50(org: uuid.UUID, row: uuid.UUID) -> None:
        async with db.unit_of_work(org) as uow:
            spec = Specification[Customer](Customer.name.like("Customer 1%"))
            await uow.customers.list(spec, page=KeysetPage(limit=50))

    async def add_commit(org: uuid.UUID, row: uuid.UUID) -> None:
        async with db.unit_of_work(org) as uow:
            await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@new.example"))
            await uow.commit()

    return {"get": get, "list50": list50, "add_commit": add_commit}


async def _run(args: argparse.Namespace, urls: dict[str, URL]) -> dict[str, list[float]]:
    databases: dict[str, PlatformDatabase] = {}
    keys: dict[str, Keys] = {}
    for name, url in urls.items():
        settings = app_settings(url, pool_size=args.concurrency, max_overflow=0)
        databases[name] = await PlatformDatabase.connect(settings)
        keys[name] = await _seed(databases[name])
    ratios: dict[str, list[float]] = {}
    try:
        for _ in range(args.rounds):
            for op_name in ("get", "list50", "add_commit"):
                rates = {}
                for name, db in databases.items():
                    op = _operations(db)[op_name]
                    these = keys[name]
                    rates[name] = await ops_per_second(
                        lambda rng, op=op, these=these: op(*rng.choice(these)),
                        args.seconds,
                        args.concurrency,
                    )
                print(
                    f"{op_name:>10}: one node {rates['one node']:7.0f}/s,"
                    f" cluster {rates['cluster']:7.0f}/s,"
                    f" cluster/one node {rates['cluster'] / rates['one node']:.2f}"
                )
                ratios.setdefault(op_name, []).append(rates["cluster"] / rates["one node"])
    finally:
        for db in databases.values():
            await db.dispose()
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    cluster = CitusCluster()
    node: FaultServer | None = None
    try:
        cluster.start()
        node, single = _single_node()
        urls = {"one node": single, "cluster": cluster.create_database(DBNAME)}
        for url in urls.values():
            upgrade(url)
        ratios = asyncio.run(_run(args, urls))
    finally:
        cluster.close()
        if node is not None:
            node.close()
    for op_name, values in ratios.items():
        print(
            f"{op_name:>10}: cluster/one node median {statistics.median(values):.2f}"
            f" (range {min(values):.2f}-{max(values):.2f}, {len(values)} rounds)"
        )


if __name__ == "__main__":
    main()
