"""The scanner's tenant-less connection, as the chain role: chain tables only, tenants
through the resolvers; and the app role kept out of the chain tables."""

from __future__ import annotations

import uuid

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from repositories.wallets.chain_database import ChainDatabase
from repositories.wallets.chain_store import ChainStore, Owner
from tenancy import Database


@pytest.fixture
def chain() -> str:
    return f"store-{uuid.uuid4().hex[:12]}"


async def register(db: Database, org_id: uuid.UUID, chain: str) -> tuple[str, uuid.UUID]:
    address = Account.create().address
    async with db.unit_of_work(org_id) as uow:
        wallet = await uow.wallets.register(chain, address)
        await uow.commit()
    return address, wallet.id


@pytest.mark.security
async def test_without_a_tenant_no_wallet_row_is_visible(
    db: Database, org_a: uuid.UUID, chain: str
) -> None:
    await register(db, org_a, chain)
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM wallets"))).scalar() == 0


async def test_addresses_resolve_to_their_owners_in_any_case(
    db: Database, chain_db: ChainDatabase, org_a: uuid.UUID, org_b: uuid.UUID, chain: str
) -> None:
    address_a, wallet_a = await register(db, org_a, chain)
    address_b, wallet_b = await register(db, org_b, chain)
    async with chain_db.store(chain) as store:
        owners = await store.owners([address_a.lower(), address_b, "0x" + "00" * 20])
    assert owners == {
        address_a.lower(): Owner(org_a, wallet_a),
        address_b: Owner(org_b, wallet_b),
    }


async def test_only_one_transaction_holds_a_chains_checkpoint(
    chain_db: ChainDatabase, chain: str
) -> None:
    async with chain_db.store(chain) as store:
        await store.ensure_checkpoint(-1)
    async with chain_db.engine.begin() as first:
        assert await ChainStore(first, chain).lock_checkpoint() == -1
        async with chain_db.engine.begin() as second:
            assert await ChainStore(second, chain).lock_checkpoint() is None


@pytest.mark.security
async def test_chain_role_cannot_delete_a_checkpoint(chain_db: ChainDatabase, chain: str) -> None:
    async with chain_db.engine.connect() as conn:
        await ChainStore(conn, chain).ensure_checkpoint(-1)
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text("DELETE FROM chain_checkpoints WHERE chain = :c"), {"c": chain})


@pytest.mark.security
async def test_chain_role_cannot_rewrite_a_stored_block_hash(
    chain_db: ChainDatabase, chain: str
) -> None:
    async with chain_db.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(
                text("UPDATE chain_blocks SET hash = 'x' WHERE chain = :c"), {"c": chain}
            )


@pytest.mark.security
@pytest.mark.parametrize("table", ["wallets", "wallet_transactions", "organizations"])
async def test_chain_role_cannot_read_tenant_tables(chain_db: ChainDatabase, table: str) -> None:
    async with chain_db.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text(f"SELECT count(*) FROM {table}"))


@pytest.mark.security
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM chain_checkpoints",
        "INSERT INTO chain_checkpoints (chain, block_number) VALUES ('app-chain', 0)",
        "UPDATE chain_checkpoints SET block_number = 0",
        "SELECT count(*) FROM chain_blocks",
        "DELETE FROM chain_blocks",
    ],
)
async def test_app_role_has_no_access_to_the_chain_tables(db: Database, statement: str) -> None:
    async with db.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="permission denied"):
            await conn.execute(text(statement))


@pytest.mark.security
async def test_unsettled_tenants_reveals_org_ids_only(chain_db: ChainDatabase, chain: str) -> None:
    async with chain_db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT * FROM unsettled_wallet_tenants(:c, 0)"), {"c": chain}
        )
        assert list(result.keys()) == ["org_id"]
