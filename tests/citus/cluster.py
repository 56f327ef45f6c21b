"""A local Citus cluster for the scale-out suite: a coordinator and two workers.

Each node is a throwaway PostgreSQL 15 instance (``tests.faults.server``) with
``shared_preload_libraries = 'citus'`` on its own free loopback port and data
directory. Each database of the cluster exists on every node with the extension,
and its coordinator knows its own address and the workers (Citus keeps the node
list per database), as ``../shared/citus/README.md`` describes.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from sqlalchemy.engine import URL

from tests.faults.server import SUPERUSER, FaultServer

#: What every node needs beyond the fault server's options: two-phase commit
#: (Citus's default for multi-node writes) needs prepared transactions.
CITUS_OPTIONS = (
    "-c shared_preload_libraries=citus",
    "-c max_prepared_transactions=100",
)


class CitusCluster:
    """A coordinator and ``workers`` worker nodes on 127.0.0.1."""

    def __init__(self, workers: int = 2) -> None:
        self.coordinator = FaultServer(prefix="tenancy-citus-", options=CITUS_OPTIONS)
        self.workers = [
            FaultServer(prefix="tenancy-citus-", options=CITUS_OPTIONS) for _ in range(workers)
        ]

    @property
    def nodes(self) -> list[FaultServer]:
        """Every node, the coordinator first."""
        return [self.coordinator, *self.workers]

    def start(self) -> None:
        """Initialise and start every node."""
        for node in self.nodes:
            node.init()
            node.start()

    def create_database(self, dbname: str) -> URL:
        """Create ``dbname`` with Citus on every node, join the workers; return its URL."""
        for node in self.nodes:
            node.create_database(dbname)
        asyncio.run(self._join(dbname))
        return self.url(dbname)

    async def _join(self, dbname: str) -> None:
        for node in self.nodes:
            connection = await node.connect(dbname)
            try:
                await connection.execute("CREATE EXTENSION IF NOT EXISTS citus")
            finally:
                await connection.close()
        connection = await self.coordinator.connect(dbname)
        try:
            await connection.execute(
                "SELECT citus_set_coordinator_host('127.0.0.1', $1)", self.coordinator.port
            )
            for worker in self.workers:
                await connection.execute("SELECT citus_add_node('127.0.0.1', $1)", worker.port)
        finally:
            await connection.close()

    def close(self) -> None:
        """Stop every node and delete its directory."""
        for node in reversed(self.nodes):
            node.close()

    def url(self, dbname: str) -> URL:
        """The superuser URL of ``dbname`` on the coordinator."""
        return self.coordinator.url(dbname)

    async def connect(self, dbname: str, user: str = SUPERUSER) -> asyncpg.Connection:
        """A connection to ``dbname`` on the coordinator, as ``user``."""
        return await asyncpg.connect(
            host="127.0.0.1", port=self.coordinator.port, user=user, database=dbname, timeout=10
        )

    async def move_tenant(self, dbname: str, table: str, org_id: uuid.UUID) -> tuple[int, int, int]:
        """Isolate ``org_id`` to shards of its own, then move them to the other worker.

        Both steps block writes while they copy (no logical replication here); return
        the tenant's new shard of ``table``, the worker it was on and the one it is on.
        """
        connection = await self.connect(dbname)
        try:
            shard = await connection.fetchval(
                "SELECT isolate_tenant_to_new_shard($1, $2::uuid, 'CASCADE',"
                " shard_transfer_mode => 'block_writes')",
                table,
                org_id,
            )
            source = await connection.fetchval(
                "SELECT nodeport FROM citus_shards WHERE shardid = $1", shard
            )
            target = next(w.port for w in self.workers if w.port != source)
            await connection.execute(
                "SELECT citus_move_shard_placement($1, '127.0.0.1', $2, '127.0.0.1', $3,"
                " shard_transfer_mode => 'block_writes')",
                shard,
                source,
                target,
            )
            return shard, source, target
        finally:
            await connection.close()
