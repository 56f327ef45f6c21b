"""Payouts: recorded before broadcast, tracked to confirmed, or failed with the reason."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eth_account import Account

from repositories.models.enums import TransactionDirection, TransactionStatus
from repositories.wallets.chain import NATIVE_LOG_INDEX
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_settings import ChainConfig, ChainSettings
from repositories.wallets.service import WalletService
from repositories.wallets.signer import LocalKeySigner
from repositories.wallets.web3_gateway import Web3Gateway
from tenancy import Database
from tenancy.errors import InvalidData, NotFound
from tests.wallets.conftest import TESTER_REJECTIONS
from tests.wallets.support import ETHER, events, new_wallet, transactions


class ObservedGateway(Web3Gateway):
    """The real gateway, noting what the database held for each hash it broadcast."""

    def __init__(self, *args: Any, db: Database, org_id: uuid.UUID, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.db = db
        self.org_id = org_id
        self.stored_at_broadcast: list[tuple[str, str]] = []

    async def send_raw_transaction(self, raw: bytes) -> str:
        rows = await transactions(self.db, self.org_id)
        self.stored_at_broadcast.extend((t.tx_hash, t.status) for t in rows)
        return await super().send_raw_transaction(raw)


async def funded_wallet(
    chain: Any, service: WalletService, signer: LocalKeySigner, org_id: uuid.UUID, name: str
) -> Any:
    wallet = await new_wallet(service, org_id, name, signer)
    await chain.pay(wallet.address, 2 * ETHER)
    return wallet


async def test_payout_is_recorded_pending_before_it_is_broadcast(
    chain: Any,
    outbox_db: Database,
    chain_db: ChainDatabase,
    chain_name: str,
    chain_config: ChainConfig,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
) -> None:
    observed = ObservedGateway(
        chain_name, chain.w3, chain_config, rejections=TESTER_REJECTIONS, db=outbox_db, org_id=org_a
    )
    settings = ChainSettings(chains={chain_name: chain_config})
    service = WalletService(outbox_db, chain_db, settings, {chain_name: observed}, signer=signer)
    wallet = await funded_wallet(chain, service, signer, org_a, chain_name)

    payout = await service.send_payout(org_a, wallet.id, Account.create().address, ETHER)

    assert observed.stored_at_broadcast == [(payout.tx_hash, TransactionStatus.PENDING)]


async def test_payout_is_confirmed_after_enough_blocks(
    chain: Any,
    service: WalletService,
    outbox_db: Database,
    chain_name: str,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
) -> None:
    wallet = await funded_wallet(chain, service, signer, org_a, chain_name)
    recipient = Account.create().address
    payout = await service.send_payout(org_a, wallet.id, recipient, ETHER // 4)
    chain.mine(2)

    await service.update_confirmations(chain_name)

    async with outbox_db.unit_of_work(org_a) as uow:
        stored = await uow.wallets.transaction(payout.id)
        assert stored.status == TransactionStatus.CONFIRMED
        assert stored.counterparty == recipient.lower()
    assert await chain.w3.eth.get_balance(recipient) == ETHER // 4
    [sent] = await events(outbox_db, org_a, "PayoutSent")
    assert sent["tx_hash"] == payout.tx_hash


async def test_scanning_a_payout_adds_its_fee_but_not_a_second_transfer(
    chain: Any,
    service: WalletService,
    db: Database,
    chain_name: str,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
) -> None:
    wallet = await funded_wallet(chain, service, signer, org_a, chain_name)
    payout = await service.send_payout(org_a, wallet.id, Account.create().address, ETHER)

    await service.sync_deposits(chain_name)

    rows = [t for t in await transactions(db, org_a) if t.tx_hash == payout.tx_hash]
    assert sorted((t.log_index, t.direction) for t in rows) == [
        (-2, TransactionDirection.OUT),
        (NATIVE_LOG_INDEX, TransactionDirection.OUT),
    ]


async def test_token_payout_is_one_transaction_once_scanned_and_confirmed(
    chain: Any,
    service: WalletService,
    db: Database,
    chain_name: str,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
) -> None:
    wallet = await funded_wallet(chain, service, signer, org_a, chain_name)
    await chain.mint(wallet.address, 1_000)
    payout = await service.send_payout(
        org_a, wallet.id, Account.create().address, 600, asset=chain.token_address
    )
    chain.mine(2)
    await service.update_confirmations(chain_name)

    await service.sync_deposits(chain_name)

    [token_out] = [
        t
        for t in await transactions(db, org_a)
        if t.tx_hash == payout.tx_hash and t.asset == chain.token_address
    ]
    assert token_out.log_index >= 0
    assert token_out.status == TransactionStatus.CONFIRMED


async def test_payout_without_funds_ends_failed_with_the_error(
    chain: Any,
    service: WalletService,
    outbox_db: Database,
    chain_name: str,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
) -> None:
    wallet = await new_wallet(service, org_a, chain_name, signer)

    payout = await service.send_payout(org_a, wallet.id, Account.create().address, ETHER)

    assert payout.status == TransactionStatus.FAILED
    assert payout.error is not None
    assert "afford" in payout.error
    [failed] = await events(outbox_db, org_a, "PayoutFailed")
    assert failed["transaction_id"] == str(payout.id)


async def test_payout_from_another_tenants_wallet_is_not_found(
    chain: Any,
    service: WalletService,
    chain_name: str,
    signer: LocalKeySigner,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
) -> None:
    wallet = await funded_wallet(chain, service, signer, org_a, chain_name)

    with pytest.raises(NotFound):
        await service.send_payout(org_b, wallet.id, Account.create().address, 1)


async def test_payout_to_a_malformed_address_is_invalid(
    service: WalletService, chain_name: str, signer: LocalKeySigner, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name, signer)

    with pytest.raises(InvalidData, match="checksum"):
        await service.send_payout(org_a, wallet.id, wallet.address, 1)


async def test_payout_needs_the_wallets_key(
    service: WalletService, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)

    with pytest.raises(InvalidData, match="signing key"):
        await service.send_payout(org_a, wallet.id, Account.create().address, 1)
