"""Reorganisations: orphaned transfers stop counting; the canonical chain is recorded."""

from __future__ import annotations

import uuid
from typing import Any

from eth_account import Account

from repositories.models.enums import TransactionStatus
from repositories.wallets.chain import NATIVE
from repositories.wallets.service import WalletService
from repositories.wallets.web3_gateway import Web3Gateway
from tenancy import Database
from tests.wallets.support import ETHER, events, new_wallet, sign_with, transactions


async def test_reorganisation_is_detected_and_rewinds_to_the_fork(
    chain: Any, service: WalletService, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    fork = await chain.head()
    snapshot = chain.snapshot()
    await chain.pay(wallet.address, ETHER)
    await service.sync_deposits(chain_name)
    chain.revert(snapshot)
    await chain.pay(wallet.address, 2 * ETHER, sender=chain.accounts[3])
    chain.mine(2)

    report = await service.sync_deposits(chain_name)

    assert report.rewound_to == fork
    assert report.last_block == await chain.head()


async def test_orphaned_deposit_is_dropped_and_the_canonical_one_recorded(
    chain: Any, service: WalletService, db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    snapshot = chain.snapshot()
    orphaned = await chain.pay(wallet.address, ETHER)
    await service.sync_deposits(chain_name)
    chain.revert(snapshot)
    canonical = await chain.pay(wallet.address, 2 * ETHER, sender=chain.accounts[3])
    chain.mine(2)

    await service.sync_deposits(chain_name)

    statuses = {t.tx_hash: t.status for t in await transactions(db, org_a)}
    assert statuses == {orphaned: TransactionStatus.DROPPED, canonical: TransactionStatus.PENDING}


async def test_balance_follows_the_canonical_chain(
    chain: Any, service: WalletService, outbox_db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    snapshot = chain.snapshot()
    await chain.pay(wallet.address, ETHER)
    chain.mine(3)
    await service.sync_deposits(chain_name)
    await service.update_confirmations(chain_name)
    async with outbox_db.unit_of_work(org_a) as uow:
        assert await uow.wallets.balance(wallet.id) == ETHER
    chain.revert(snapshot)
    await chain.pay(wallet.address, 5 * ETHER, sender=chain.accounts[3])
    chain.mine(5)

    await service.sync_deposits(chain_name)
    await service.update_confirmations(chain_name)

    async with outbox_db.unit_of_work(org_a) as uow:
        assert await uow.wallets.balance(wallet.id) == 5 * ETHER
    [dropped] = await events(outbox_db, org_a, "WalletTransactionDropped")
    assert dropped["status"] == TransactionStatus.DROPPED


async def test_transaction_mined_again_after_a_reorganisation_is_recorded_at_its_new_block(
    chain: Any,
    service: WalletService,
    gateway: Web3Gateway,
    db: Database,
    chain_name: str,
    org_a: uuid.UUID,
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    payer = Account.create()
    await chain.pay(payer.address, ETHER)
    prepared = await gateway.prepare_transfer(
        payer.address.lower(), wallet.address, NATIVE, ETHER // 2
    )
    signed = await sign_with(payer.key, prepared)
    snapshot = chain.snapshot()
    await gateway.send_raw_transaction(signed.raw)
    await service.sync_deposits(chain_name)
    [first] = await transactions(db, org_a)
    chain.revert(snapshot)
    chain.mine(1)
    # The same signed bytes, broadcast again, land one block later on the new chain.
    await gateway.send_raw_transaction(signed.raw)

    await service.sync_deposits(chain_name)

    [again] = await transactions(db, org_a)
    assert again.id == first.id
    assert again.status == TransactionStatus.PENDING
    assert again.block_number == first.block_number + 1
    assert again.block_hash != first.block_hash


async def test_confirmation_waits_while_the_recorded_block_is_orphaned(
    chain: Any, service: WalletService, db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    snapshot = chain.snapshot()
    await chain.pay(wallet.address, ETHER)
    await service.sync_deposits(chain_name)
    chain.revert(snapshot)
    chain.mine(5)

    report = await service.update_confirmations(chain_name)

    [recorded] = await transactions(db, org_a)
    assert report.confirmed == 0
    assert recorded.status == TransactionStatus.PENDING
