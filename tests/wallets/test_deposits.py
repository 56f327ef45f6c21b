"""Deposit scan: the right tenant, exactly once, confirmations, concurrency, events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import text

from repositories.models.enums import TransactionStatus
from repositories.wallets.chain import NATIVE
from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.custody import new_challenge, sign_challenge
from repositories.wallets.service import WalletService
from tenancy import Database
from tenancy.errors import InvalidData
from tests.wallets.support import ETHER, events, new_wallet, transactions


async def test_deposits_in_one_block_land_with_their_own_tenants(
    chain: Any,
    service: WalletService,
    db: Database,
    chain_name: str,
    org_a: uuid.UUID,
    org_b: uuid.UUID,
) -> None:
    wallet_a = await new_wallet(service, org_a, chain_name)
    wallet_b = await new_wallet(service, org_b, chain_name)
    chain.hold_blocks()
    await chain.pay(wallet_a.address, 2 * ETHER, sender=chain.accounts[1])
    await chain.pay(wallet_b.address, 3 * ETHER, sender=chain.accounts[2])
    await chain.mint(wallet_b.address, 750)
    chain.mine()

    await service.sync_deposits(chain_name)

    seen_a, seen_b = await transactions(db, org_a), await transactions(db, org_b)
    assert [(t.wallet_id, t.asset, t.amount) for t in seen_a] == [(wallet_a.id, NATIVE, 2 * ETHER)]
    assert {(t.wallet_id, t.asset, t.amount) for t in seen_b} == {
        (wallet_b.id, NATIVE, 3 * ETHER),
        (wallet_b.id, chain.token_address, 750),
    }
    assert len({t.block_number for t in [*seen_a, *seen_b]}) == 1


async def test_transfers_of_unregistered_addresses_are_not_recorded(
    chain: Any, service: WalletService, db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    await chain.pay("0x" + "12" * 20, ETHER)

    report = await service.sync_deposits(chain_name)

    assert report.recorded == 0
    assert await transactions(db, org_a) == []
    assert wallet.address != "0x" + "12" * 20


async def test_rescanning_the_same_blocks_records_nothing_twice(
    chain: Any,
    service: WalletService,
    outbox_db: Database,
    chain_db: ChainDatabase,
    chain_name: str,
    org_a: uuid.UUID,
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    await chain.pay(wallet.address, ETHER)
    await chain.mint(wallet.address, 10)
    first = await service.sync_deposits(chain_name)
    # As after a crash between the tenant commits and the checkpoint: scan again.
    async with chain_db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE chain_checkpoints SET block_number = -1 WHERE chain = :c"),
            {"c": chain_name},
        )
        await conn.execute(text("DELETE FROM chain_blocks WHERE chain = :c"), {"c": chain_name})

    again = await service.sync_deposits(chain_name)

    assert (first.recorded, again.recorded) == (2, 0)
    assert again.blocks_scanned == first.blocks_scanned
    assert len(await transactions(outbox_db, org_a)) == 2
    assert len(await events(outbox_db, org_a, "WalletTransactionRecorded")) == 2


async def test_a_second_pass_reads_only_new_blocks(
    chain: Any, service: WalletService, chain_name: str, org_a: uuid.UUID
) -> None:
    await service.sync_deposits(chain_name)
    chain.mine(4)

    report = await service.sync_deposits(chain_name)

    assert report.blocks_scanned == 4
    assert report.last_block == await chain.head()


async def test_scan_reads_at_most_one_batch_per_pass(
    chain: Any, service: WalletService, chain_name: str
) -> None:
    chain.mine(250)

    first = await service.sync_deposits(chain_name)
    second = await service.sync_deposits(chain_name)

    assert first.blocks_scanned == 200
    assert second.last_block == await chain.head()


async def test_confirmations_advance_as_blocks_are_mined(
    chain: Any, service: WalletService, db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    await chain.pay(wallet.address, ETHER)
    await service.sync_deposits(chain_name)
    await service.update_confirmations(chain_name)
    [recorded] = await transactions(db, org_a)
    assert (recorded.status, recorded.confirmations) == (TransactionStatus.PENDING, 1)

    chain.mine(1)
    await service.update_confirmations(chain_name)
    [second] = await transactions(db, org_a)
    assert (second.status, second.confirmations) == (TransactionStatus.PENDING, 2)

    chain.mine(1)
    report = await service.update_confirmations(chain_name)
    [third] = await transactions(db, org_a)
    assert (third.status, third.confirmations) == (TransactionStatus.CONFIRMED, 3)
    assert report.confirmed == 1


async def test_only_confirmed_deposits_count_in_the_balance(
    chain: Any, service: WalletService, outbox_db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    await chain.pay(wallet.address, ETHER)
    await service.sync_deposits(chain_name)
    async with outbox_db.unit_of_work(org_a) as uow:
        assert await uow.wallets.balance(wallet.id) == 0

    chain.mine(2)
    await service.update_confirmations(chain_name)

    async with outbox_db.unit_of_work(org_a) as uow:
        assert await uow.wallets.balance(wallet.id) == ETHER


async def test_recording_and_confirming_emit_events_through_the_outbox(
    chain: Any, service: WalletService, outbox_db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    tx_hash = await chain.pay(wallet.address, ETHER)
    await service.sync_deposits(chain_name)
    chain.mine(2)

    await service.update_confirmations(chain_name)

    [recorded] = await events(outbox_db, org_a, "WalletTransactionRecorded")
    [confirmed] = await events(outbox_db, org_a, "WalletTransactionConfirmed")
    assert recorded["tx_hash"] == confirmed["tx_hash"] == tx_hash
    assert recorded["aggregate_id"] == confirmed["aggregate_id"] == str(wallet.id)
    assert confirmed["amount"] == str(ETHER)


async def test_concurrent_scans_read_each_block_once(
    chain: Any, service: WalletService, db: Database, chain_name: str, org_a: uuid.UUID
) -> None:
    wallet = await new_wallet(service, org_a, chain_name)
    for amount in range(1, 6):
        await chain.pay(wallet.address, amount)
    head = await chain.head()

    reports = await asyncio.gather(*(service.sync_deposits(chain_name) for _ in range(4)))

    assert sum(r.blocks_scanned for r in reports) == head + 1
    assert sum(r.recorded for r in reports) == 5
    assert sorted(t.amount for t in await transactions(db, org_a)) == [1, 2, 3, 4, 5]


async def test_unknown_chain_is_a_clear_error(service: WalletService) -> None:
    with pytest.raises(InvalidData, match="unknown chain 'nochain'"):
        await service.sync_deposits("nochain")


async def test_wallet_on_an_unknown_chain_cannot_be_registered(
    service: WalletService, org_a: uuid.UUID
) -> None:
    account = Account.create()
    proof = sign_challenge(new_challenge(org_a, account.address), account.key)
    with pytest.raises(InvalidData, match="unknown chain"):
        await service.register_wallet(org_a, "nochain", account.address, proof=proof)
