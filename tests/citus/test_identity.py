"""Identities on a Citus coordinator: sign-up, invitations, member changes and the
tenant-less resolvers, through the library as the app role.

The organization and its first owner are written by the superuser here: founding
one (and registering or removing a member) mixes the app role with the resolver's
definer functions in one transaction, which Citus refuses (README, "Scale-out on
Citus").
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from repositories import PlatformDatabase
from repositories.account import Accounts
from repositories.models import MemberRole, PaymentLink
from repositories.payment_link_resolver import PaymentLinkResolver
from repositories.user import LoginResolver
from tenancy import NotFound, TenancySettings
from tenancy.schema.migration import upgrade
from tenancy.settings import APP_ROLE, RESOLVER_ROLE
from tests.citus.cluster import CitusCluster
from tests.repositories.payments_support import new_price

DBNAME = "tenancy_identity"


@pytest.fixture(scope="module")
def migrated(cluster: CitusCluster) -> None:
    """The library migrated on its own coordinator database."""
    upgrade(cluster.create_database(DBNAME))


@pytest.fixture
async def library(cluster: CitusCluster, migrated: None) -> AsyncIterator[PlatformDatabase]:
    """The library on the coordinator, as the app role."""
    admin = cluster.url(DBNAME).render_as_string(hide_password=False)
    base = TenancySettings(admin_database_url=admin, pool_size=2, max_overflow=0)
    app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    database = await PlatformDatabase.connect(base.model_copy(update={"database_url": app_url}))
    yield database
    await database.dispose()


async def _sign_up(db: PlatformDatabase) -> tuple[uuid.UUID, str]:
    name = f"u{secrets.token_hex(5)}"
    email = f"{name}@example.com"
    return await Accounts(db.engine).register(email, name, "argon2-hash"), email


async def _found(cluster: CitusCluster, db: PlatformDatabase, owner: uuid.UUID) -> uuid.UUID:
    org_id = uuid.uuid4()
    connection = await cluster.connect(DBNAME)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO organizations (id, name) VALUES ($1, 'org')", org_id
            )
            await connection.execute(
                "INSERT INTO memberships (org_id, user_id, role, status)"
                " VALUES ($1, $2, 'owner', 'active')",
                org_id,
                owner,
            )
            await connection.execute(
                "UPDATE users SET member_of = member_of || $1::uuid WHERE id = $2", org_id, owner
            )
    finally:
        await connection.close()
    return org_id


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
    host, other = await _found(cluster, library, owner), await _found(cluster, library, owner)
    async with library.unit_of_work(host) as uow:
        invitation = await uow.organizations.invite_member(guest_email)
        await uow.commit()

    accepted = await Accounts(library.engine).accept_invitation(invitation.token, guest)

    assert accepted == host
    assert await _member_ids(library, host) == {owner, guest}
    assert await _member_ids(library, other) == {owner}


async def test_a_withdrawn_invitation_cannot_be_accepted(
    cluster: CitusCluster, library: PlatformDatabase
) -> None:
    owner, _ = await _sign_up(library)
    guest, guest_email = await _sign_up(library)
    host = await _found(cluster, library, owner)
    async with library.unit_of_work(host) as uow:
        invitation = await uow.organizations.invite_member(guest_email)
        await uow.commit()
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
    host = await _found(cluster, library, owner)
    async with library.unit_of_work(host) as uow:
        invitation = await uow.organizations.invite_member(guest_email)
        await uow.commit()
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
    host = await _found(cluster, library, owner)
    async with library.unit_of_work(host) as uow:
        price = await new_price(uow)
        link = await uow.payment_links.add(PaymentLink(price_id=price.id))
        await uow.commit()

    found = await PaymentLinkResolver(library.engine).resolve(link.token)

    assert (found.org_id, found.payment_link_id) == (host, link.id)


async def test_an_unknown_payment_link_token_is_not_found(library: PlatformDatabase) -> None:
    with pytest.raises(NotFound):
        await PaymentLinkResolver(library.engine).resolve(secrets.token_urlsafe(32))
