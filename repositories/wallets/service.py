"""The wallet service: deposits, confirmations, payouts and reconciliation, per chain.

The deposit scan and its reorganisation handling live in ``repositories.wallets.deposit_scanner``.
Chain-wide passes learn which tenants need attention through the narrow
``unsettled_wallet_tenants`` resolver, which only the chain role may run
(``ChainDatabase``), and then work inside one unit of work per tenant, as the
app role under that tenant's RLS; they never read another tenant's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from tenancy.extras import missing_extra

try:
    from eth_utils.address import to_checksum_address
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("chain", exc) from exc

from repositories.database import PlatformDatabase
from repositories.models import Wallet, WalletTransaction
from repositories.models.enums import TransactionDirection
from repositories.wallets.chain import (
    NATIVE,
    NATIVE_LOG_INDEX,
    ChainError,
    ChainGateway,
    TransactionRejected,
    parse_address,
)
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_settings import ChainConfig, ChainSettings
from repositories.wallets.custody import (
    EVM,
    ControlChallenge,
    ControlProof,
    new_challenge,
    verify_control,
)
from repositories.wallets.deposit_scanner import DepositScanner
from repositories.wallets.reports import (
    ConfirmationReport,
    ReconciliationLine,
    ReconciliationReport,
    SyncReport,
)
from repositories.wallets.repository import TransactionFacts
from repositories.wallets.signer import Signer
from repositories.wallets.transaction_events import PayoutFailed, PayoutSent
from tenancy.errors import InvalidData


class WalletService:
    """Keeps the tenants' wallet transactions in step with the chains they live on."""

    def __init__(
        self,
        db: PlatformDatabase,
        chain_db: ChainDatabase,
        chains: ChainSettings,
        gateways: Mapping[str, ChainGateway],
        *,
        signer: Signer | None = None,
    ) -> None:
        # Two roles: ``db`` (the app role) for everything done for one tenant,
        # ``chain_db`` (the chain role) for the tenant-less steps of chain-wide passes.
        self._db = db
        self._chain_db = chain_db
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

    def control_challenge(self, org_id: uuid.UUID, chain: str, address: str) -> ControlChallenge:
        """Return a challenge whose signature by ``address``'s key lets ``org_id`` register it.

        Raises:
            InvalidData: unknown chain, malformed address or wrong checksum.
        """
        self.chain(chain)
        return new_challenge(org_id, address, family=EVM)

    async def register_wallet(
        self,
        org_id: uuid.UUID,
        chain: str,
        address: str,
        *,
        proof: ControlProof,
        agent_id: uuid.UUID | None = None,
        label: str = "",
    ) -> Wallet:
        """Register a watch-only ``address`` on ``chain`` for ``org_id``, given proof of control.

        Deposits to a registered address are credited to its organization, so the
        address's key must have signed ``proof`` (see ``control_challenge``) for
        ``org_id``; a proof made for another organization is refused.

        Raises:
            InvalidData: unknown chain, malformed address or wrong checksum.
            IsolationViolation: the proof is not this organization's, is expired,
                or was not signed by the address's key.
            Conflict: the address is registered on this chain, or held by another
                organization on any chain of its family.
        """
        self.chain(chain)
        verify_control(proof, org_id, address, family=EVM)
        return await self._register(org_id, chain, address, agent_id=agent_id, label=label)

    async def provision_wallet(
        self,
        org_id: uuid.UUID,
        chain: str,
        *,
        agent_id: uuid.UUID | None = None,
        label: str = "",
    ) -> Wallet:
        """Have the signer create a key for ``org_id`` and register its address on ``chain``.

        Raises:
            InvalidData: unknown chain, or no signer is configured.
        """
        self.chain(chain)
        if self._signer is None:
            raise InvalidData("no signer is configured to provision keys")
        address = await self._signer.provision(org_id)
        return await self._register(
            org_id, chain, to_checksum_address(address), agent_id=agent_id, label=label
        )

    async def _register(
        self, org_id: uuid.UUID, chain: str, address: str, *, agent_id: uuid.UUID | None, label: str
    ) -> Wallet:
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
        return await DepositScanner(self._db, self._chain_db, chain, config, gateway).sync()

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
        async with self._chain_db.store(chain) as store:
            org_ids = await store.unsettled_tenants(head + 1)
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
                or no key of this organization for the wallet (another
                organization's key for the same address is never used).
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
            # The key must have been provisioned for this organization: a wallet row
            # alone proves nothing (the same address on another EVM chain, say).
            if self._signer is None or not self._signer.can_sign(org_id, wallet.address):
                raise InvalidData("no signing key is held for this wallet")
            unsigned = await gateway.prepare_transfer(wallet.address, to, asset, amount)
            signed = await self._signer.sign(org_id, unsigned)
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
        async with self._chain_db.store(chain) as store:
            scanned = await store.checkpoint()
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
