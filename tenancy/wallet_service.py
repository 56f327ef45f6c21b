"""The wallet service: deposit scan, confirmations, reorganisations, payouts, reconciliation.

Chain-wide work (the scan of one chain) runs on a connection without a tenant:
it reads and writes only the chain tables, and learns which tenant owns an
address through ``resolve_wallet`` and which tenants need attention through
``unsettled_wallet_tenants``; it never reads a tenant's rows. Everything it
records goes through one unit of work per tenant, under that tenant's RLS.

A scan holds the row lock of its chain's checkpoint for its whole pass, so
concurrent scans of one chain never read the same blocks; a scan that finds the
row locked returns at once. Tenant units of work commit before the checkpoint
advances: a crash in between re-scans the same blocks, and recording is idempotent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence

from models import Wallet, WalletTransaction
from models.enums import TransactionDirection
from repositories.wallet import RecordOutcome, TransactionFacts
from tenancy.chain import (
    FEE_LOG_INDEX,
    NATIVE,
    NATIVE_LOG_INDEX,
    ChainError,
    ChainGateway,
    TransactionRejected,
    Transfer,
    parse_address,
)
from tenancy.chain_settings import ChainConfig, ChainSettings
from tenancy.chain_store import ChainStore, Owner
from tenancy.database import Database
from tenancy.errors import InvalidData, raise_translated
from tenancy.log import get_logger
from tenancy.signer import Signer
from tenancy.wallet_events import PayoutFailed, PayoutSent
from tenancy.wallet_reports import (
    ConfirmationReport,
    ReconciliationLine,
    ReconciliationReport,
    SyncReport,
)

logger = get_logger(__name__)


class WalletService:
    """Keeps the tenants' wallet transactions in step with the chains they live on."""

    def __init__(
        self,
        db: Database,
        chains: ChainSettings,
        gateways: Mapping[str, ChainGateway],
        *,
        signer: Signer | None = None,
    ) -> None:
        self._db = db
        self._chains = chains
        self._gateways = dict(gateways)
        self._signer = signer

    def chain(self, chain: str) -> tuple[ChainConfig, ChainGateway]:
        """Return the settings and gateway of ``chain``.

        Raises:
            InvalidData: the chain is not configured or has no gateway.
        """
        config = self._chains.get(chain)
        gateway = self._gateways.get(chain)
        if gateway is None:
            raise InvalidData(f"unknown chain {chain!r}")
        return config, gateway

    async def register_wallet(
        self,
        org_id: uuid.UUID,
        chain: str,
        address: str,
        *,
        agent_id: uuid.UUID | None = None,
        label: str = "",
    ) -> Wallet:
        """Register ``address`` on ``chain`` for ``org_id``.

        Raises:
            InvalidData: unknown chain, malformed address or wrong checksum.
            Conflict: the address is already registered on this chain.
        """
        self.chain(chain)
        async with self._db.unit_of_work(org_id) as uow:
            wallet = await uow.wallets.register(chain, address, agent_id=agent_id, label=label)
            await uow.commit()
        return wallet

    # -- deposit scan --------------------------------------------------------

    async def sync_deposits(self, chain: str) -> SyncReport:
        """Scan the blocks after the checkpoint and record transfers of registered wallets.

        Raises:
            InvalidData: unknown chain.
            ChainError: the node failed; nothing after the last good pass is lost.
        """
        config, gateway = self.chain(chain)
        try:
            async with self._db.engine.begin() as conn:
                await ChainStore(conn, chain).ensure_checkpoint(config.start_block - 1)
            async with self._db.engine.begin() as conn:
                return await self._sync(ChainStore(conn, chain), config, gateway)
        except Exception as exc:
            raise_translated(exc)
            raise

    async def _sync(
        self, store: ChainStore, config: ChainConfig, gateway: ChainGateway
    ) -> SyncReport:
        chain = store.chain
        checkpoint = await store.lock_checkpoint()
        if checkpoint is None:
            return SyncReport(chain, 0, -1, skipped=True)
        rewound_to = await self._rewind_if_reorganised(store, config, gateway)
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
        recorded = await self._record(store, gateway, scan.transfers, head)
        await store.save_blocks(scan.blocks, keep=config.reorg_depth)
        await store.advance(last)
        return SyncReport(chain, checkpoint + 1, last, recorded, rewound_to)

    async def _record(
        self,
        store: ChainStore,
        gateway: ChainGateway,
        transfers: Sequence[Transfer],
        head: int,
    ) -> int:
        addresses = {t.sender for t in transfers} | {t.recipient for t in transfers if t.recipient}
        owners = await store.owners(addresses)
        facts: dict[uuid.UUID, list[TransactionFacts]] = defaultdict(list)
        for transfer in transfers:
            sender = owners.get(transfer.sender)
            recipient = owners.get(transfer.recipient) if transfer.recipient else None
            if sender is None and recipient is None:
                continue
            found = await _facts_of(store.chain, gateway, transfer, sender, recipient, head)
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

    async def _rewind_if_reorganised(
        self, store: ChainStore, config: ChainConfig, gateway: ChainGateway
    ) -> int | None:
        stored = await store.recent_blocks(config.reorg_depth)
        if not stored:
            return None
        fork: int | None = None
        # Newest first: when the stored tip is still canonical, so is every ancestor.
        for number, block_hash in stored:
            block = await gateway.block(number)
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

    # -- confirmations -------------------------------------------------------

    async def update_confirmations(self, chain: str) -> ConfirmationReport:
        """Advance the confirmations of pending transactions; confirm those deep enough.

        Payouts not yet seen in a block are looked up by receipt: a reverted one
        ends ``failed``. A transaction is confirmed only while its block is still
        canonical; otherwise it waits for the scan to rewind it.

        Raises:
            InvalidData: unknown chain.
            ChainError: the node failed.
        """
        config, gateway = self.chain(chain)
        head = await gateway.block_number()
        async with self._db.engine.connect() as conn:
            org_ids = await ChainStore(conn, chain).unsettled_tenants(head + 1)
        canonical: dict[int, str | None] = {}
        confirmed = updated = failed = 0
        for org_id in org_ids:
            async with self._db.unit_of_work(org_id) as uow:
                for tx in await uow.wallets.pending(chain):
                    block_number, block_hash = tx.block_number, tx.block_hash
                    if block_number is None or block_hash is None:
                        receipt = await gateway.receipt(tx.tx_hash)
                        if receipt is None:
                            continue
                        if not receipt.succeeded:
                            await uow.wallets.mark_failed(tx.id, "reverted on chain")
                            uow.collect(_payout_failed(tx, "reverted on chain"))
                            failed += 1
                            continue
                        block_number, block_hash = receipt.block_number, receipt.block_hash
                        depth = head - block_number + 1
                        await uow.wallets.mark_mined(tx.id, block_number, block_hash, depth)
                    depth = head - block_number + 1
                    deep = depth >= config.confirmations
                    if deep and not await _is_canonical(
                        gateway, block_number, block_hash, canonical
                    ):
                        continue
                    if await uow.wallets.update_confirmations(
                        tx.id, block_hash, depth, confirmed=deep
                    ):
                        confirmed += deep
                        updated += 1
                await uow.commit()
        return ConfirmationReport(confirmed, updated, failed)

    # -- payouts -------------------------------------------------------------

    async def send_payout(
        self,
        org_id: uuid.UUID,
        wallet_id: uuid.UUID,
        recipient: str,
        amount: int,
        *,
        asset: str = NATIVE,
    ) -> WalletTransaction:
        """Sign and broadcast a payout from a wallet of ``org_id``, recording it first.

        The pending row is committed before the broadcast, so a crash never loses a
        payout that may be on its way. A refusal by the node ends it ``failed``
        with the node's reason; ``update_confirmations`` tracks it from then on.

        Raises:
            NotFound: the wallet is not one of this tenant's.
            InvalidData: malformed recipient, amount not positive, unknown asset,
                or no signing key for the wallet.
            TransactionRejected: a token transfer would revert (nothing recorded).
            ChainError: the node failed before the broadcast was confirmed.
        """
        to = parse_address(recipient)
        if amount <= 0:
            raise InvalidData("a payout amount must be positive")
        async with self._db.unit_of_work(org_id) as uow:
            wallet = await uow.wallets.get(wallet_id)
            config, gateway = self.chain(wallet.chain)
            if not config.is_known_asset(asset):
                raise InvalidData(f"asset {asset!r} is not followed on {wallet.chain}")
            if self._signer is None or not self._signer.can_sign(wallet.address):
                raise InvalidData("no signing key is held for this wallet")
            unsigned = await gateway.prepare_transfer(wallet.address, to, asset, amount)
            signed = await self._signer.sign(unsigned)
            fact = TransactionFacts(
                wallet_id=wallet.id,
                chain=wallet.chain,
                tx_hash=signed.tx_hash,
                log_index=NATIVE_LOG_INDEX,
                direction=TransactionDirection.OUT,
                asset=asset,
                amount=amount,
                counterparty=to,
            )
            payout = (await uow.wallets.record_transaction(fact)).transaction
            await uow.commit()
        try:
            await gateway.send_raw_transaction(signed.raw)
        except TransactionRejected as exc:
            async with self._db.unit_of_work(org_id) as uow:
                payout = await uow.wallets.mark_failed(payout.id, str(exc))
                uow.collect(_payout_failed(payout, str(exc)))
                await uow.commit()
            return payout
        except ChainError:
            # Whether the node took it is unknown: it stays pending, and the
            # confirmation pass finds its receipt if it was broadcast.
            raise
        async with self._db.unit_of_work(org_id) as uow:
            uow.collect(
                PayoutSent(
                    aggregate_id=str(payout.wallet_id),
                    transaction_id=payout.id,
                    chain=payout.chain,
                    tx_hash=payout.tx_hash,
                    recipient=to,
                    asset=asset,
                    amount=str(amount),
                )
            )
            await uow.commit()
        return payout

    # -- reconciliation ------------------------------------------------------

    async def reconcile(self, org_id: uuid.UUID, chain: str) -> ReconciliationReport:
        """Compare each wallet's recorded balances with the chain at the last scanned block.

        Raises:
            InvalidData: unknown chain.
            ChainError: the node failed.
        """
        config, gateway = self.chain(chain)
        async with self._db.engine.connect() as conn:
            scanned = await ChainStore(conn, chain).checkpoint()
        # Before the first scan nothing is recorded: compare with the genesis state.
        block = max(0, min(await gateway.block_number(), scanned if scanned is not None else 0))
        assets = [NATIVE, *sorted(config.token_addresses())]
        lines = []
        async with self._db.unit_of_work(org_id) as uow:
            for wallet in await uow.wallets.on_chain(chain):
                recorded = await uow.wallets.balances(wallet.id, through_block=block)
                for asset in assets:
                    on_chain = await gateway.balance(wallet.address, asset, block=block)
                    line = ReconciliationLine(
                        wallet.id, wallet.address, asset, recorded.get(asset, 0), on_chain
                    )
                    lines.append(line)
        return ReconciliationReport(chain, block, lines)


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


async def _is_canonical(
    gateway: ChainGateway, number: int, block_hash: str, cache: dict[int, str | None]
) -> bool:
    if number not in cache:
        block = await gateway.block(number)
        cache[number] = block.hash if block is not None else None
    return cache[number] == block_hash


def _payout_failed(tx: WalletTransaction, error: str) -> PayoutFailed:
    return PayoutFailed(
        aggregate_id=str(tx.wallet_id),
        transaction_id=tx.id,
        chain=tx.chain,
        tx_hash=tx.tx_hash,
        error=error,
    )
