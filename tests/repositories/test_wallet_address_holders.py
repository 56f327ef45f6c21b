"""Wallet address holders: one organization per family address, while any of its wallets exists.

One key controls its address on every EVM chain, so the address belongs to one
organization there: ``wallet_address_holders`` holds each ``(chain_family,
address)`` once, every wallet on it references ``(chain_family, address,
org_id)``, and the repository writes the row with the first wallet and deletes
it with the last (migration 0013). All as the app role, through the repositories.
"""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from repositories.models import Wallet, WalletAddress, WalletAddressHolder
from repositories.wallets.repository import WalletRepository
from tenancy import Conflict, Database, ForeignKeyViolation
from tenancy.specification import Specification


def _address() -> str:
    return "0x" + secrets.token_hex(20)


async def _holders(db: Database, org_id: uuid.UUID) -> list[tuple[str, str, uuid.UUID]]:
    async with db.session(org_id) as session:
        rows = await session.execute(select(WalletAddressHolder))
        return [(h.chain_family, h.address, h.org_id) for h in rows.scalars()]


async def _count(db: Database, org_id: uuid.UUID, model: type[object]) -> int:
    async with db.session(org_id) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _add(db: Database, org_id: uuid.UUID, *wallets: Wallet) -> list[Wallet]:
    async with db.unit_of_work(org_id) as uow:
        added = [await uow.wallets.add(wallet) for wallet in wallets]
        await uow.commit()
    return added


async def test_registering_a_wallet_writes_its_holder_row(db: Database, org_a: uuid.UUID) -> None:
    address = _address()

    await _add(db, org_a, Wallet(chain="ethereum", address=address))

    assert await _holders(db, org_a) == [("evm", address, org_a)]


async def test_wallets_of_one_organization_on_two_chains_share_one_holder_row(
    db: Database, org_a: uuid.UUID
) -> None:
    address = _address()

    await _add(db, org_a, Wallet(chain="ethereum", address=address))
    await _add(db, org_a, Wallet(chain="polygon", address=address))

    assert await _holders(db, org_a) == [("evm", address, org_a)]


async def test_wallets_on_one_family_address_in_one_flush_write_one_holder_row(
    db: Database, org_a: uuid.UUID
) -> None:
    address = _address()

    async with db.session(org_a) as session:
        await WalletRepository(session).add_many(
            [Wallet(chain=chain, address=address) for chain in ("ethereum", "polygon", "base")]
        )

    assert await _holders(db, org_a) == [("evm", address, org_a)]


async def test_an_address_held_by_another_organization_is_a_conflict_on_every_chain_of_its_family(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = _address()
    await _add(db, org_a, Wallet(chain="ethereum", address=address))

    with pytest.raises(Conflict) as caught:
        await _add(db, org_b, Wallet(chain="polygon", address=address))

    assert caught.value.constraint == "pk_wallet_address_holders"
    assert address not in str(caught.value)


async def test_a_refused_claim_of_a_held_address_writes_nothing(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = _address()
    await _add(db, org_a, Wallet(chain="ethereum", address=address))

    with pytest.raises(Conflict):
        await _add(db, org_b, Wallet(chain="polygon", address=address))

    counts = [await _count(db, org_b, m) for m in (Wallet, WalletAddress, WalletAddressHolder)]
    assert counts == [0, 0, 0]


async def test_a_wallet_without_its_holder_row_is_refused(db: Database, org_a: uuid.UUID) -> None:
    wallet = Wallet(id=uuid.uuid4(), chain="ethereum", address=_address())

    with pytest.raises(ForeignKeyViolation) as caught:
        async with db.session(org_a) as session:
            session.add(
                WalletAddress(chain=wallet.chain, address=wallet.address, wallet_id=wallet.id)
            )
            await session.flush()
            session.add(wallet)

    assert (
        caught.value.constraint == "fk_wallets_chain_family_address_org_id_wallet_address_holders"
    )


async def test_deleting_one_of_two_wallets_on_a_family_address_keeps_its_holder_row(
    db: Database, org_a: uuid.UUID
) -> None:
    address = _address()
    first, _ = await _add(
        db,
        org_a,
        Wallet(chain="ethereum", address=address),
        Wallet(chain="polygon", address=address),
    )

    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.delete(first.id)
        await uow.commit()

    assert await _holders(db, org_a) == [("evm", address, org_a)]


async def test_deleting_the_last_wallet_on_a_family_address_deletes_its_holder_row(
    db: Database, org_a: uuid.UUID
) -> None:
    address = _address()
    first, second = await _add(
        db,
        org_a,
        Wallet(chain="ethereum", address=address),
        Wallet(chain="polygon", address=address),
    )

    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.delete(first.id)
        await uow.wallets.delete(second.id)
        await uow.commit()

    assert await _holders(db, org_a) == []


async def test_deleting_wallets_by_specification_deletes_the_holder_rows_they_leave_unused(
    db: Database, org_a: uuid.UUID
) -> None:
    shared, alone = _address(), _address()
    await _add(
        db,
        org_a,
        Wallet(chain="ethereum", address=shared),
        Wallet(chain="polygon", address=shared),
        Wallet(chain="ethereum", address=alone),
    )

    async with db.unit_of_work(org_a) as uow:
        deleted = await uow.wallets.delete_where(Specification[Wallet](Wallet.chain == "ethereum"))
        await uow.commit()

    assert deleted == 2
    assert await _holders(db, org_a) == [("evm", shared, org_a)]


async def test_an_address_its_holder_deleted_every_wallet_of_may_be_registered_by_another(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = _address()
    (held,) = await _add(db, org_a, Wallet(chain="ethereum", address=address))
    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.delete(held.id)
        await uow.commit()

    await _add(db, org_b, Wallet(chain="polygon", address=address))

    assert await _holders(db, org_b) == [("evm", address, org_b)]


async def test_deleting_an_organization_deletes_its_holder_rows(
    db: Database, org_a: uuid.UUID, admin_url: URL
) -> None:
    address = _address()
    await _add(db, org_a, Wallet(chain="ethereum", address=address))
    admin = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with admin.begin() as connection:
            await connection.execute(
                text("DELETE FROM organizations WHERE id = :id"), {"id": org_a}
            )
            left = await connection.execute(
                text("SELECT count(*) FROM wallet_address_holders WHERE address = :address"),
                {"address": address},
            )
            assert left.scalar_one() == 0
    finally:
        await admin.dispose()
