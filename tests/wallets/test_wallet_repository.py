"""WalletRepository against the real database as tenancy_app: registration, recording, isolation."""

from __future__ import annotations

import secrets
import uuid

import pytest
from eth_account import Account

from repositories.models import Agent
from repositories.models.enums import TransactionDirection, TransactionStatus
from repositories.wallets.chain import NATIVE
from repositories.wallets.repository import RecordOutcome, TransactionFacts
from tenancy import Database
from tenancy.errors import Conflict, ForeignKeyViolation, InvalidData, NotFound

CHAIN = "repo-test"


def new_address() -> str:
    return str(Account.create().address)


def new_hash() -> str:
    return "0x" + secrets.token_hex(32)


def facts(wallet_id: uuid.UUID, **overrides: object) -> TransactionFacts:
    values: dict[str, object] = {
        "wallet_id": wallet_id,
        "chain": CHAIN,
        "tx_hash": new_hash(),
        "log_index": -1,
        "direction": TransactionDirection.IN,
        "asset": NATIVE,
        "amount": 100,
        "counterparty": new_address().lower(),
        "block_number": 7,
        "block_hash": new_hash(),
        "confirmations": 1,
    }
    values.update(overrides)
    return TransactionFacts(**values)  # type: ignore[arg-type]


async def register(db: Database, org_id: uuid.UUID, **kwargs: object) -> uuid.UUID:
    async with db.unit_of_work(org_id) as uow:
        wallet = await uow.wallets.register(CHAIN, new_address(), **kwargs)  # type: ignore[arg-type]
        await uow.commit()
    return wallet.id


async def test_registered_address_is_stored_lower_case(db: Database, org_a: uuid.UUID) -> None:
    address = new_address()
    async with db.unit_of_work(org_a) as uow:
        wallet = await uow.wallets.register(CHAIN, address, label="treasury")
        await uow.commit()
        assert wallet.address == address.lower()


async def test_malformed_address_cannot_be_registered(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="40 hex digits"):
            await uow.wallets.register(CHAIN, "0xnot-an-address")


async def test_address_with_a_wrong_checksum_cannot_be_registered(
    db: Database, org_a: uuid.UUID
) -> None:
    address = new_address()
    flipped = address[:2] + address[2:].swapcase()
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="checksum"):
            await uow.wallets.register(CHAIN, flipped)


async def test_an_address_belongs_to_one_tenant_per_chain(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = new_address()
    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.register(CHAIN, address)
        await uow.commit()

    async with db.unit_of_work(org_b) as uow:
        with pytest.raises(Conflict):
            await uow.wallets.register(CHAIN, address)


async def test_wallets_are_listed_by_agent(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        agent = Agent(name="payer")
        uow.session.add(agent)
        await uow.session.flush()
        mine = await uow.wallets.register(CHAIN, new_address(), agent_id=agent.id)
        await uow.wallets.register(CHAIN, new_address())
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        assert [w.id for w in await uow.wallets.for_agent(agent.id)] == [mine.id]


async def test_wallet_cannot_name_another_tenants_agent(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    async with db.unit_of_work(org_b) as uow:
        agent = Agent(name="theirs")
        uow.session.add(agent)
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.wallets.register(CHAIN, new_address(), agent_id=agent.id)


async def test_wallets_are_listed_by_chain(db: Database, org_a: uuid.UUID) -> None:
    wallet_id = await register(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.add(uow.wallets.model(chain="elsewhere", address=new_address().lower()))
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        assert wallet_id in {w.id for w in await uow.wallets.on_chain(CHAIN)}
        assert all(w.chain == CHAIN for w in await uow.wallets.on_chain(CHAIN))


async def test_recording_the_same_transfer_twice_is_a_no_op(db: Database, org_a: uuid.UUID) -> None:
    wallet_id = await register(db, org_a)
    deposit = facts(wallet_id)
    async with db.unit_of_work(org_a) as uow:
        first = await uow.wallets.record_transaction(deposit)
        second = await uow.wallets.record_transaction(deposit)
        await uow.commit()
        assert (first.outcome, second.outcome) == (RecordOutcome.INSERTED, RecordOutcome.UNCHANGED)
        assert len(await uow.wallets.transactions(wallet_id)) == 1


async def test_a_transfer_with_a_malformed_hash_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    wallet_id = await register(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="64 hex digits"):
            await uow.wallets.record_transaction(facts(wallet_id, tx_hash="0x1234"))


async def test_lookup_by_a_malformed_hash_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="64 hex digits"):
            await uow.wallets.transactions_by_hash(CHAIN, "not-a-hash")


async def test_balance_counts_confirmed_transfers_in_minus_out(
    db: Database, org_a: uuid.UUID
) -> None:
    wallet_id = await register(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        for amount, direction, confirm in (
            (500, TransactionDirection.IN, True),
            (200, TransactionDirection.OUT, True),
            (1000, TransactionDirection.IN, False),
        ):
            recorded = await uow.wallets.record_transaction(
                facts(wallet_id, amount=amount, direction=direction)
            )
            tx = recorded.transaction
            if confirm:
                assert tx.block_hash is not None
                await uow.wallets.update_confirmations(tx.id, tx.block_hash, 12, confirmed=True)
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        assert await uow.wallets.balance(wallet_id) == 300


async def test_a_confirmed_transaction_cannot_be_marked_failed(
    db: Database, org_a: uuid.UUID
) -> None:
    wallet_id = await register(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        tx = (await uow.wallets.record_transaction(facts(wallet_id))).transaction
        assert tx.block_hash is not None
        await uow.wallets.update_confirmations(tx.id, tx.block_hash, 12, confirmed=True)
        with pytest.raises(InvalidData, match="confirmed"):
            await uow.wallets.mark_failed(tx.id, "too late")


async def test_marking_failed_keeps_the_error(db: Database, org_a: uuid.UUID) -> None:
    wallet_id = await register(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        tx = (await uow.wallets.record_transaction(facts(wallet_id))).transaction
        failed = await uow.wallets.mark_failed(tx.id, "insufficient funds")
        assert (failed.status, failed.error) == (TransactionStatus.FAILED, "insufficient funds")


@pytest.mark.security
async def test_tenant_cannot_read_another_tenants_wallet(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    wallet_id = await register(db, org_a)

    async with db.unit_of_work(org_b) as uow:
        with pytest.raises(NotFound):
            await uow.wallets.get(wallet_id)
        assert wallet_id not in {w.id for w in await uow.wallets.on_chain(CHAIN)}


@pytest.mark.security
async def test_tenant_cannot_read_another_tenants_transactions(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    wallet_id = await register(db, org_a)
    deposit = facts(wallet_id)
    async with db.unit_of_work(org_a) as uow:
        tx = (await uow.wallets.record_transaction(deposit)).transaction
        await uow.commit()

    async with db.unit_of_work(org_b) as uow:
        assert await uow.wallets.transactions_by_hash(CHAIN, deposit.tx_hash) == []
        assert await uow.wallets.transactions(wallet_id) == []
        with pytest.raises(NotFound):
            await uow.wallets.transaction(tx.id)


@pytest.mark.security
async def test_tenant_cannot_record_into_another_tenants_wallet(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    wallet_id = await register(db, org_a)

    async with db.unit_of_work(org_b) as uow:
        with pytest.raises(ForeignKeyViolation):
            await uow.wallets.record_transaction(facts(wallet_id))


@pytest.mark.security
async def test_tenant_cannot_confirm_or_fail_another_tenants_transaction(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    wallet_id = await register(db, org_a)
    async with db.unit_of_work(org_a) as uow:
        tx = (await uow.wallets.record_transaction(facts(wallet_id))).transaction
        await uow.commit()
    assert tx.block_hash is not None

    async with db.unit_of_work(org_b) as uow:
        assert not await uow.wallets.update_confirmations(tx.id, tx.block_hash, 99, confirmed=True)
        with pytest.raises(NotFound):
            await uow.wallets.mark_failed(tx.id, "not yours")
