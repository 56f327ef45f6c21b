"""``ChainStore``: the scanner's tenant-less SQL on the chain tables and the two resolvers.

It runs on a connection of the chain role (``ChainDatabase``) with no tenant
bound: that role has no grant on any tenant table, and RLS would hide every row
of one anyway. It touches only ``chain_checkpoints`` and ``chain_blocks``, which
hold public chain facts, and learns about tenants only through the SECURITY
DEFINER functions, which reveal org and wallet ids alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from repositories.models import ChainCheckpoint, ScannedBlock
from repositories.wallets.chain import BlockRef, BlockScan

_CHECKPOINTS: Table = ChainCheckpoint.metadata.tables[ChainCheckpoint.__tablename__]
_BLOCKS: Table = ScannedBlock.metadata.tables[ScannedBlock.__tablename__]

# One round trip for all addresses of a scan, each through the narrow resolver.
_RESOLVE = text(
    "SELECT a.address, r.org_id, r.wallet_id"
    " FROM unnest(CAST(:addresses AS text[])) AS a(address)"
    " CROSS JOIN LATERAL resolve_wallet(:chain, a.address) AS r"
)
_UNSETTLED = text("SELECT org_id FROM unsettled_wallet_tenants(:chain, :from_block)")


@dataclass(frozen=True, slots=True)
class Owner:
    """The tenant and wallet an address resolves to."""

    org_id: uuid.UUID
    wallet_id: uuid.UUID


class ChainStore:
    """Checkpoint, scanned block hashes and tenant resolution of one chain."""

    def __init__(self, conn: AsyncConnection, chain: str) -> None:
        self._conn = conn
        self.chain = chain

    async def ensure_checkpoint(self, initial: int) -> None:
        """Create the checkpoint at ``initial`` unless it exists.

        Run it in a transaction of its own, committed before ``lock_checkpoint``:
        an insert waits for any other uncommitted insert of the same row, so a
        first scan still holding its transaction would block every other one.
        """
        await self._conn.execute(
            pg_insert(_CHECKPOINTS)
            .values(chain=self.chain, block_number=initial)
            .on_conflict_do_nothing(index_elements=["chain"])
        )

    async def lock_checkpoint(self) -> int | None:
        """Lock the checkpoint and return it.

        Returns ``None`` when another transaction holds the lock (that scan is
        running now, and this one has nothing to add) or no checkpoint exists.
        The lock ends with the connection's transaction.
        """
        statement = (
            select(_CHECKPOINTS.c.block_number)
            .where(_CHECKPOINTS.c.chain == self.chain)
            .with_for_update(skip_locked=True)
        )
        value = (await self._conn.execute(statement)).scalar()
        return int(value) if value is not None else None

    async def checkpoint(self) -> int | None:
        """Return the last scanned block without locking, or ``None`` before any scan."""
        statement = select(_CHECKPOINTS.c.block_number).where(_CHECKPOINTS.c.chain == self.chain)
        value = (await self._conn.execute(statement)).scalar()
        return int(value) if value is not None else None

    async def advance(self, block_number: int) -> None:
        """Move the checkpoint to ``block_number`` (forwards after a scan, back on a rewind)."""
        await self._conn.execute(
            update(_CHECKPOINTS)
            .where(_CHECKPOINTS.c.chain == self.chain)
            .values(block_number=block_number, updated_at=func.now())
        )

    async def recent_blocks(self, limit: int) -> Sequence[tuple[int, str]]:
        """Return up to ``limit`` stored (number, hash) pairs, newest first."""
        statement = (
            select(_BLOCKS.c.number, _BLOCKS.c.hash)
            .where(_BLOCKS.c.chain == self.chain)
            .order_by(_BLOCKS.c.number.desc())
            .limit(limit)
        )
        return [(int(n), str(h)) for n, h in (await self._conn.execute(statement)).all()]

    async def links(self, checkpoint: int, scan: BlockScan) -> bool:
        """Return whether ``scan`` continues the stored chain and is consistent in itself."""
        statement = select(_BLOCKS.c.hash).where(
            _BLOCKS.c.chain == self.chain, _BLOCKS.c.number == checkpoint
        )
        previous = (await self._conn.execute(statement)).scalar()
        for block in scan.blocks:
            if previous is not None and block.parent_hash != previous:
                return False
            previous = block.hash
        hashes = {b.number: b.hash for b in scan.blocks}
        return all(hashes.get(t.block_number) == t.block_hash for t in scan.transfers)

    async def save_blocks(self, blocks: Sequence[BlockRef], keep: int) -> None:
        """Store the hashes of scanned ``blocks`` and forget those ``keep`` blocks older."""
        if not blocks:
            return
        rows = [
            {"chain": self.chain, "number": b.number, "hash": b.hash, "parent_hash": b.parent_hash}
            for b in blocks
        ]
        await self._conn.execute(insert(_BLOCKS), rows)
        await self._conn.execute(
            delete(_BLOCKS).where(
                _BLOCKS.c.chain == self.chain, _BLOCKS.c.number <= blocks[-1].number - keep
            )
        )

    async def forget_after(self, block_number: int) -> None:
        """Delete the stored hashes of blocks after ``block_number`` (they were orphaned)."""
        await self._conn.execute(
            delete(_BLOCKS).where(_BLOCKS.c.chain == self.chain, _BLOCKS.c.number > block_number)
        )

    async def owners(self, addresses: Iterable[str]) -> dict[str, Owner]:
        """Return the owning tenant and wallet of each registered address (lower-case)."""
        wanted = sorted(set(addresses))
        if not wanted:
            return {}
        rows = await self._conn.execute(_RESOLVE, {"chain": self.chain, "addresses": wanted})
        return {address: Owner(org_id, wallet_id) for address, org_id, wallet_id in rows}

    async def unsettled_tenants(self, from_block: int) -> list[uuid.UUID]:
        """Return tenants with pending transactions or any in blocks from ``from_block`` on."""
        rows = await self._conn.execute(_UNSETTLED, {"chain": self.chain, "from_block": from_block})
        return [row.org_id for row in rows]
