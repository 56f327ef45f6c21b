"""Identities on a Citus coordinator: sign-up, founding, members, invitations and the
tenant-less resolvers, through the library as the app role.

Citus lets no role touch a tenant's shards after another role changed them in the
same transaction, so each identity change is one definer call that writes its
events too (migration 0016); these tests show each one works there.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from repositories import PlatformDatabase
from repositories.account import Accounts
from repositories.models import (
    MemberRole,
    PaymentLink,
    User,
    Wallet,
    WalletAddress,
    WalletAddressHolder,
)
from repositories.organization import Invitation
from repositories.payment_link_resolver import PaymentLinkResolver
from repositories.user import LoginResolver
from tenancy import Conflict, NotFound
from tenancy.schema.migration import upgrade
from tenancy.settings import CHAIN_ROLE, RESOLVER_ROLE
from tests.citus.cluster import CitusCluster
from tests.citus.conftest import library_database
from tests.repositories.payments_support import new_price

DBNAME = "tenancy_identity"


@pytest.fixture(scope="module")
def migrated(cluster: CitusCluster) -> None:
    """The library migrated on its own coordinator database."""
    upgrade(cluster.create_database(DBNAME))


@pytest.fixture
async def library(cluster: CitusCluster, migrated: None) -> AsyncIterator[PlatformDatabase]:
    """The library on the coordinator, as the app role."""
    async with library_database(cluster, DBNAME) as database:
        yield database


async def _sign_up(db: PlatformDatabase) -> tuple[uuid.UUID, str]:
    name = f"u{secrets.token_hex(5)}"
    email = f"{name}@example.com"
    return await Accounts(db.engine).register(email, name, "argon2-hash"), email


async def _found(db: PlatformDatabase, owner: uuid.UUID | User) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.create("org", owner)
        await uow.commit()
    return org_id


async def _events(cluster: CitusCluster, org_id: uuid.UUID) -> list[str]:
    connection = await cluster.connect(DBNAME)
    try:
        rows = await connection.fetch(
            "SELECT event_type FROM outbox_events WHERE org_id = $1 ORDER BY occurred_at, position",
            org_id,
        )
    finally:
        await connection.close()
    return [r["event_type"] for r in rows]


async def _invite(db: PlatformDatabase, org_id: uuid.UUID, email: str) -> Invitation:
    async with db.unit_of_work(org_id) as uow:
        invitation = await uow.organizations.invite_member(email)
        await uow.commit()
    return invitation


async def _register(
    db: PlatformDatabase, org_id: uuid.UUID, user: User, role: MemberRole = MemberRole.MEMBER
) -> None:
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.register_member(user, role)
        await uow.commit()


def _new_user() -> User:
    name = f"n{secrets.token_hex(5)}"
    return User(email=f"{name}@example.com", username=name)


async def _member_ids(db: PlatformDatabase, org_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.unit_of_work(org_id) as uow:
        return {m.user.id for m in await uow.organizations.members()}


async def test_the_resolver_role_may_log_in_on_every_node(
    cluster: CitusCluster, migrated: None
) -> None:
    logins = []
    for node in cluster.nodes:
        connection = await node.connect(DBNAME)
        try:
            query = "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1"
            logins.append(await connection.fetchval(query, RESOLVER_ROLE))
        finally:
            await connection.close()

    assert logins == [True] * len(cluster.nodes)


async def test_sign_up_creates_a_user_the_login_resolver_finds(library: PlatformDatabase) -> None:
    user_id, email = await _sign_up(library)

    record = await LoginResolver(library.engine).resolve(email)

    assert record is not None
    assert (record.user_id, record.password_hash) == (user_id, "argon2-hash")


async def test_an_accepted_invitation_makes_a_member_seen_by_that_organization_only(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner, _ = await _sign_up(library)
    guest, guest_email = await _sign_up(library)
    host, other = await _found(library, owner), await _found(library, owner)
    invitation = await _invite(library, host, guest_email)

    accepted = await Accounts(library.engine).accept_invitation(invitation.token, guest)

    assert accepted == host
    assert await _member_ids(library, host) == {owner, guest}
    assert await _member_ids(library, other) == {owner}


async def test_a_withdrawn_invitation_cannot_be_accepted(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner, _ = await _sign_up(library)
    guest, guest_email = await _sign_up(library)
    host = await _found(library, owner)
    invitation = await _invite(library, host, guest_email)
    async with library.unit_of_work(host) as uow:
        await uow.organizations.remove_member(guest)
        await uow.commit()

    with pytest.raises(NotFound):
        await Accounts(library.engine).accept_invitation(invitation.token, guest)


async def test_a_member_can_be_promoted_and_the_old_owner_suspended(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner, _ = await _sign_up(library)
    guest, guest_email = await _sign_up(library)
    host = await _found(library, owner)
    invitation = await _invite(library, host, guest_email)
    await Accounts(library.engine).accept_invitation(invitation.token, guest)

    async with library.unit_of_work(host) as uow:
        await uow.organizations.change_role(guest, MemberRole.OWNER)
        await uow.organizations.suspend_member(owner)
        await uow.commit()

    async with library.unit_of_work(host) as uow:
        members = {m.user.id: (m.role, m.status) for m in await uow.organizations.members()}
    assert members == {owner: ("owner", "suspended"), guest: ("owner", "active")}


async def test_a_payment_link_token_resolves_to_its_tenant_and_link(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner, _ = await _sign_up(library)
    host = await _found(library, owner)
    async with library.unit_of_work(host) as uow:
        price = await new_price(uow)
        link = await uow.payment_links.add(PaymentLink(price_id=price.id))
        await uow.commit()

    found = await PaymentLinkResolver(library.engine).resolve(link.token)

    assert (found.org_id, found.payment_link_id) == (host, link.id)


async def test_an_unknown_payment_link_token_is_not_found(library: PlatformDatabase) -> None:
    with pytest.raises(NotFound):
        await PaymentLinkResolver(library.engine).resolve(secrets.token_urlsafe(32))


async def test_founding_with_a_new_owner_writes_owner_membership_and_events_once(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner = _new_user()

    org_id = await _found(library, owner)

    assert await _member_ids(library, org_id) == {owner.id}
    assert await _events(cluster, org_id) == [
        "UserCreated",
        "OrganizationCreated",
        "MemberAdded",
    ]


async def test_a_signed_up_user_founds_an_organization_seen_by_no_other(
    library: PlatformDatabase,
) -> None:
    founder, _ = await _sign_up(library)
    bystander = await _found(library, _new_user())

    org_id = await _found(library, founder)

    assert await _member_ids(library, org_id) == {founder}
    assert founder not in await _member_ids(library, bystander)


async def test_founding_an_existing_organization_again_is_a_conflict(
    library: PlatformDatabase,
) -> None:
    founder, _ = await _sign_up(library)
    org_id = await _found(library, founder)

    with pytest.raises(Conflict):
        async with library.unit_of_work(org_id) as uow:
            await uow.organizations.create("again", founder)


async def test_a_registered_member_is_seen_by_that_organization_only(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    host, other = await _found(library, _new_user()), await _found(library, _new_user())
    member = _new_user()

    await _register(library, host, member, MemberRole.ADMIN)

    assert member.id in await _member_ids(library, host)
    assert member.id not in await _member_ids(library, other)
    assert (await _events(cluster, host))[-2:] == ["UserCreated", "MemberAdded"]


async def test_a_removed_member_is_no_longer_seen_and_its_removal_is_an_event(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner = _new_user()
    host = await _found(library, owner)
    member = _new_user()
    await _register(library, host, member)

    async with library.unit_of_work(host) as uow:
        await uow.organizations.remove_member(member.id)
        await uow.commit()

    assert await _member_ids(library, host) == {owner.id}
    assert (await _events(cluster, host))[-1] == "MemberRemoved"


async def test_ownership_moves_to_another_member(library: PlatformDatabase) -> None:
    owner, member = _new_user(), _new_user()
    host = await _found(library, owner)
    await _register(library, host, member)

    async with library.unit_of_work(host) as uow:
        await uow.organizations.transfer_ownership(owner.id, member.id)
        await uow.commit()

    async with library.unit_of_work(host) as uow:
        roles = {m.user.id: m.role for m in await uow.organizations.members()}
    assert roles == {owner.id: "admin", member.id: "owner"}


async def test_a_wallet_address_resolves_to_its_tenant_for_the_chain_role(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    host = await _found(library, _new_user())
    wallet = Wallet(id=uuid.uuid4(), chain="ethereum", address=f"0x{secrets.token_hex(20)}")
    async with library.session(host) as session:
        # The address's lookup and holder rows before the wallet that references them.
        session.add(WalletAddress(chain="ethereum", address=wallet.address, wallet_id=wallet.id))
        session.add(WalletAddressHolder(chain_family="evm", address=wallet.address))
        await session.flush()
        session.add(wallet)

    connection = await cluster.connect(DBNAME, user=CHAIN_ROLE)
    try:
        found = await connection.fetchrow(
            "SELECT org_id, wallet_id FROM resolve_wallet('ethereum', $1)", wallet.address
        )
        unknown = await connection.fetchrow(
            "SELECT org_id FROM resolve_wallet('ethereum', $1)", f"0x{secrets.token_hex(20)}"
        )
    finally:
        await connection.close()

    assert (found["org_id"], found["wallet_id"]) == (host, wallet.id)
    assert unknown is None


async def test_identity_changes_keep_working_for_a_tenant_isolated_and_moved(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner = _new_user()
    host = await _found(library, owner)
    await cluster.move_tenant(DBNAME, "organizations", host)
    member = _new_user()

    await _register(library, host, member)
    async with library.unit_of_work(host) as uow:
        await uow.organizations.remove_member(member.id)
        await uow.commit()

    assert await _member_ids(library, host) == {owner.id}
