"""Global keys through their lookup tables: written first, refused when taken, removed too.

A payment link's token, a wallet's address and an invitation's token hash are
unique across tenants because each lives once in a lookup table
(``payment_link_tokens``, ``wallet_addresses``, ``invitation_tokens``) that the
owning row references. All as the app role, through the repositories.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from repositories.account import Accounts
from repositories.models import (
    InvitationToken,
    Membership,
    PaymentLink,
    PaymentLinkToken,
    Wallet,
    WalletAddress,
)
from repositories.wallets.repository import WalletRepository
from tenancy import Conflict, Database, ForeignKeyViolation
from tenancy.specification import Specification
from tests.repositories.payments_support import new_price

if TYPE_CHECKING:
    from tests.repositories.conftest import FoundedOrganization

_RESOLVE_LINK = text("SELECT org_id, payment_link_id FROM resolve_payment_link(:token)")


def _address() -> str:
    return "0x" + secrets.token_hex(20)


async def _count(db: Database, org_id: uuid.UUID, model: type[object]) -> int:
    async with db.session(org_id) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _new_link(db: Database, org_id: uuid.UUID) -> PaymentLink:
    async with db.unit_of_work(org_id) as uow:
        link = await uow.payment_links.create((await new_price(uow)).id)
        await uow.commit()
    return link


async def _resolve(db: Database, token: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(_RESOLVE_LINK, {"token": token})
        return [(row.org_id, row.payment_link_id) for row in rows]


# -- payment link tokens -----------------------------------------------------------


async def test_adding_a_link_writes_its_token_lookup_row(db: Database, org_a: uuid.UUID) -> None:
    link = await _new_link(db, org_a)

    async with db.session(org_a) as session:
        found = (await session.execute(select(PaymentLinkToken))).scalars().one()

    assert (found.token, found.org_id, found.link_id) == (link.token, org_a, link.id)


async def test_a_token_taken_by_another_tenant_is_a_conflict_and_nothing_is_written(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    taken = (await _new_link(db, org_a)).token

    with pytest.raises(Conflict) as caught:
        async with db.unit_of_work(org_b) as uow:
            price = await new_price(uow)
            await uow.payment_links.add(PaymentLink(price_id=price.id, token=taken))
            await uow.commit()

    assert caught.value.constraint == "pk_payment_link_tokens"
    assert await _count(db, org_b, PaymentLink) == 0
    assert await _count(db, org_b, PaymentLinkToken) == 0


async def test_a_link_without_its_token_lookup_row_is_refused(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        price_id = (await new_price(uow)).id
        await uow.commit()

    with pytest.raises(ForeignKeyViolation) as caught:
        async with db.session(org_a) as session:
            session.add(PaymentLink(price_id=price_id, token=secrets.token_urlsafe(32)))

    assert caught.value.constraint == "fk_payment_links_token_org_id_id_payment_link_tokens"
    assert await _count(db, org_a, PaymentLink) == 0


async def test_a_link_cannot_take_the_token_of_another_link_of_its_tenant(
    db: Database, org_a: uuid.UUID
) -> None:
    # The lookup row names the link it belongs to: a second link cannot reference it.
    first = await _new_link(db, org_a)

    with pytest.raises(ForeignKeyViolation):
        async with db.session(org_a) as session:
            session.add(PaymentLink(price_id=first.price_id, token=first.token))


async def test_deleting_a_link_deletes_its_token_lookup_row(db: Database, org_a: uuid.UUID) -> None:
    link = await _new_link(db, org_a)

    async with db.unit_of_work(org_a) as uow:
        await uow.payment_links.delete(link.id)
        await uow.commit()

    assert await _count(db, org_a, PaymentLinkToken) == 0
    assert await _resolve(db, link.token) == []


async def test_deleting_links_by_specification_deletes_their_token_lookup_rows(
    db: Database, org_a: uuid.UUID
) -> None:
    kept, gone = await _new_link(db, org_a), await _new_link(db, org_a)

    async with db.unit_of_work(org_a) as uow:
        deleted = await uow.payment_links.delete_where(
            Specification[PaymentLink](PaymentLink.id == gone.id)
        )
        await uow.commit()

    assert deleted == 1
    assert await _resolve(db, gone.token) == []
    assert await _resolve(db, kept.token) == [(org_a, kept.id)]


# -- wallet addresses --------------------------------------------------------------


async def test_an_address_taken_by_another_tenant_is_a_conflict_and_nothing_is_written(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    address = _address()
    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.add(Wallet(chain="ethereum", address=address))
        await uow.commit()

    with pytest.raises(Conflict) as caught:
        async with db.unit_of_work(org_b) as uow:
            await uow.wallets.add(Wallet(chain="ethereum", address=address))
            await uow.commit()

    assert caught.value.constraint == "pk_wallet_addresses"
    assert await _count(db, org_b, Wallet) == 0
    assert await _count(db, org_b, WalletAddress) == 0


async def test_a_wallet_without_its_address_lookup_row_is_refused(
    db: Database, org_a: uuid.UUID
) -> None:
    with pytest.raises(ForeignKeyViolation) as caught:
        async with db.session(org_a) as session:
            session.add(Wallet(chain="ethereum", address=_address()))

    assert caught.value.constraint == "fk_wallets_chain_address_org_id_id_wallet_addresses"
    assert await _count(db, org_a, Wallet) == 0


async def test_deleting_a_wallet_frees_its_address_for_its_tenant(
    db: Database, org_a: uuid.UUID
) -> None:
    address = _address()
    async with db.unit_of_work(org_a) as uow:
        wallet = await uow.wallets.add(Wallet(chain="ethereum", address=address))
        await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        await uow.wallets.delete(wallet.id)
        again = await uow.wallets.add(Wallet(chain="ethereum", address=address))
        await uow.commit()

    async with db.session(org_a) as session:
        found = (await session.execute(select(WalletAddress))).scalars().one()
    assert found.wallet_id == again.id


async def test_adding_wallets_in_one_flush_writes_every_lookup_row(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.session(org_a) as session:
        added = await WalletRepository(session).add_many(
            [Wallet(chain="ethereum", address=_address()) for _ in range(3)]
        )

    async with db.session(org_a) as session:
        lookups = set((await session.execute(select(WalletAddress.wallet_id))).scalars())
    assert lookups == {wallet.id for wallet in added}


# -- invitation tokens -------------------------------------------------------------


async def test_inviting_writes_the_token_hash_lookup_row(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        invitation = await uow.organizations.invite_member(founded_other.owner.email)
        await uow.commit()

    async with db.session(founded.org_id) as session:
        found = (await session.execute(select(InvitationToken))).scalars().one()
    assert found.user_id == invitation.user_id


async def test_accepting_an_invitation_deletes_its_lookup_row(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        invitation = await uow.organizations.invite_member(founded_other.owner.email)
        await uow.commit()

    org_id = await Accounts(db.engine).accept_invitation(invitation.token, invitation.user_id)

    assert org_id == founded.org_id
    assert await _count(db, founded.org_id, InvitationToken) == 0


async def test_withdrawing_an_invitation_deletes_its_lookup_row(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.invite_member(founded_other.owner.email)
        await uow.commit()

    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.remove_member(founded_other.owner.id)
        await uow.commit()

    assert await _count(db, founded.org_id, InvitationToken) == 0


async def test_an_invitation_without_its_lookup_row_is_refused(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    with pytest.raises(ForeignKeyViolation) as caught:
        async with db.session(founded.org_id) as session:
            await session.execute(
                insert(Membership).values(
                    user_id=founded_other.owner.id,
                    role="member",
                    status="pending",
                    invitation_token_hash=secrets.token_bytes(32),
                )
            )

    assert caught.value.constraint == "fk_memberships_invitation_token_hash_invitation_tokens"


async def test_deleting_an_organization_deletes_its_lookup_rows(
    db: Database, org_a: uuid.UUID, admin_url: URL
) -> None:
    # Both the links and their lookup rows cascade from the organization, in one statement.
    link = await _new_link(db, org_a)
    admin = create_async_engine(admin_url, poolclass=NullPool)
    try:
        async with admin.begin() as connection:
            await connection.execute(
                text("DELETE FROM organizations WHERE id = :id"), {"id": org_a}
            )
            left = await connection.execute(
                text("SELECT count(*) FROM payment_link_tokens WHERE token = :token"),
                {"token": link.token},
            )
            assert left.scalar_one() == 0
    finally:
        await admin.dispose()
