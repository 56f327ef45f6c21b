"""The deposit scan of one chain, and the rewind when the chain reorganised.

A scan runs on a connection without a tenant, as the chain role
(``ChainDatabase``): it reads and writes only the chain tables, learns which
tenant owns an address through ``resolve_wallet`` and which tenants have
transactions to rewind through ``unsettled_wallet_tenants``; it never reads a
tenant's rows. What it records goes through one unit of work per tenant, as the
app role under that tenant's RLS.

A scan holds the row lock of its chain's checkpoint for its whole pass, so
concurrent scans of one chain never read the same blocks; a scan that finds the
row locked returns at once. Tenant units of work commit before the checkpoint
advances: a crash in between re-scans the same blocks, and recording is idempotent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from repositories.database import PlatformDatabase
from repositories.models.enums import TransactionDirection
from repositories.wallets.chain import FEE_LOG_INDEX, NATIVE, ChainError, ChainGateway, Transfer
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_settings import ChainConfig
from repositories.wallets.chain_store import ChainStore, Owner
from repositories.wallets.reports import SyncReport
from repositories.wallets.repository import RecordOutcome, TransactionFacts
from tenancy.errors import translated
from tenancy.log import get_logger

logger = get_logger(__name__)


class DepositScanner:
    """Reads new blocks of one chain and records the transfers of registered wallets."""

    def __init__(
        self,
        db: PlatformDatabase,
        chain_db: ChainDatabase,
        chain: str,
        config: ChainConfig,
        gateway: ChainGateway,
    ) -> None:
        self._db = db
        self._chain_db = chain_db
        self._chain = chain
        self._config = config
        self._gateway = gateway

    async def sync(self) -> SyncReport:
        """Run one pass: rewind if reorganised, scan up to one batch, record, advance.

        Raises:
            ChainError: the node failed; nothing after the last good pass is lost.
        """
        with translated():
            async with self._chain_db.store(self._chain) as store:
                await store.ensure_checkpoint(self._config.start_block - 1)
            async with self._chain_db.store(self._chain) as store:
                return await self._sync(store)

    async def _sync(self, store: ChainStore) -> SyncReport:
        chain, config, gateway = store.chain, self._config, self._gateway
        checkpoint = await store.lock_checkpoint()
        if checkpoint is None:
            return SyncReport(chain, 0, -1, skipped=True)
        rewound_to = await self._rewind_if_reorganised(store)
        if rewound_to is not None:
            checkpoint = rewound_to
        head = await gateway.block_number()
        last = min(head, checkpoint + config.scan_batch_blocks)
        if last <= checkpoint:
            return SyncReport(chain, checkpoint + 1, checkpoint, rewound_to=rewound_to)
        scan = await gateway.scan(checkpoint + 1, last)
        if not await store.links(checkpoint, scan):
            # The chain changed while it was read; the next pass rewinds and rescans.
            logger.warning("chain %s moved during a scan; nothing recorded", chain)
            return SyncReport(chain, checkpoint + 1, checkpoint, rewound_to=rewound_to)
        recorded = await self._record(store, scan.transfers, head)
        await store.save_blocks(scan.blocks, keep=config.reorg_depth)
        await store.advance(last)
        return SyncReport(chain, checkpoint + 1, last, recorded, rewound_to)

    async def _record(self, store: ChainStore, transfers: Sequence[Transfer], head: int) -> int:
        addresses = {t.sender for t in transfers} | {t.recipient for t in transfers if t.recipient}
        owners = await store.owners(addresses)
        facts: dict[uuid.UUID, list[TransactionFacts]] = defaultdict(list)
        for transfer in transfers:
            sender = owners.get(transfer.sender)
            recipient = owners.get(transfer.recipient) if transfer.recipient else None
            if sender is None and recipient is None:
                continue
            found = await _facts_of(store.chain, self._gateway, transfer, sender, recipient, head)
            for org_id, fact in found:
                facts[org_id].append(fact)
        recorded = 0
        for org_id, tenant_facts in facts.items():
            async with self._db.unit_of_work(org_id) as uow:
                for fact in tenant_facts:
                    outcome = (await uow.wallets.record_transaction(fact)).outcome
                    recorded += outcome is RecordOutcome.INSERTED
                await uow.commit()
        return recorded

    async def _rewind_if_reorganised(self, store: ChainStore) -> int | None:
        stored = await store.recent_blocks(self._config.reorg_depth)
        if not stored:
            return None
        fork: int | None = None
        # Newest first: when the stored tip is still canonical, so is every ancestor.
        for number, block_hash in stored:
            block = await self._gateway.block(number)
            if block is not None and block.hash == block_hash:
                fork = number
                break
        if fork == stored[0][0]:
            return None
        if fork is None:
            fork = stored[-1][0] - 1
            logger.warning(
                "chain %s reorganised deeper than %d kept blocks", store.chain, len(stored)
            )
        await store.forget_after(fork)
        await store.advance(fork)
        for org_id in await store.unsettled_tenants(fork + 1):
            async with self._db.unit_of_work(org_id) as uow:
                await uow.wallets.orphan_after(store.chain, fork)
                await uow.commit()
        logger.info("chain %s reorganised: rewound to block %d", store.chain, fork)
        return fork


async def _facts_of(
    chain: str,
    gateway: ChainGateway,
    transfer: Transfer,
    sender: Owner | None,
    recipient: Owner | None,
    head: int,
) -> list[tuple[uuid.UUID, TransactionFacts]]:
    """Return the rows one transfer gives the tenants on either side of it."""

    def fact(
        owner: Owner,
        direction: TransactionDirection,
        log_index: int,
        amount: int,
        asset: str,
        counterparty: str | None,
    ) -> tuple[uuid.UUID, TransactionFacts]:
        return owner.org_id, TransactionFacts(
            wallet_id=owner.wallet_id,
            chain=chain,
            tx_hash=transfer.tx_hash,
            log_index=log_index,
            direction=direction,
            asset=asset,
            amount=amount,
            counterparty=counterparty,
            block_number=transfer.block_number,
            block_hash=transfer.block_hash,
            confirmations=head - transfer.block_number + 1,
        )

    out: list[tuple[uuid.UUID, TransactionFacts]] = []
    succeeded = True
    if sender is not None and transfer.is_native:
        # Our wallet sent this transaction: it paid a fee, and only the receipt
        # says whether the value moved (a reverted call keeps it).
        receipt = await gateway.receipt(transfer.tx_hash)
        if receipt is None or receipt.block_hash != transfer.block_hash:
            raise ChainError(f"{chain}: receipt of {transfer.tx_hash} is not in the scanned block")
        succeeded = receipt.succeeded
        if receipt.fee:
            out.append(
                fact(sender, TransactionDirection.OUT, FEE_LOG_INDEX, receipt.fee, NATIVE, None)
            )
    if transfer.amount == 0 or not succeeded:
        return out
    if sender is not None:
        out.append(
            fact(
                sender,
                TransactionDirection.OUT,
                transfer.log_index,
                transfer.amount,
                transfer.asset,
                transfer.recipient,
            )
        )
    if recipient is not None:
        # Incoming native value to an account without code cannot revert, so a
        # deposit needs no receipt (platform wallets are key-held accounts).
        out.append(
            fact(
                recipient,
                TransactionDirection.IN,
                transfer.log_index,
                transfer.amount,
                transfer.asset,
                transfer.sender,
            )
        )
    return out
