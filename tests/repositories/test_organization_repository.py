"""OrganizationRepository: creation with a first owner, members and roles, the last-owner rule."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import TYPE_CHECKING

import pytest

from repositories.domain_events import (
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    OrganizationCreated,
    OwnershipTransferred,
)
from repositories.errors import LastOwnerError
from repositories.models import Membership, Organization, User
from tenancy import (
    Conflict,
    Database,
    InvalidData,
    IsolationViolation,
    NotFound,
)
from tests.repositories.members_support import new_user, register
from tests.repositories.payments_support import (
    RecordingDispatcher,
    backend_pid,
    wait_until_blocked,
)

if TYPE_CHECKING:
    from tests.repositories.conftest import FoundedOrganization


async def roles(db: Database, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    async with db.unit_of_work(org_id) as uow:
        return {m.user.id: m.role for m in await uow.organizations.members()}


# -- creating an organization ----------------------------------------------------


async def test_create_makes_the_new_user_its_first_owner(db: Database) -> None:
    org_id, owner = uuid.uuid4(), new_user()
    async with db.unit_of_work(org_id) as uow:
        organization = await uow.organizations.create("Acme", owner)
        await uow.commit()
    assert organization.id == org_id
    assert await roles(db, org_id) == {owner.id: "owner"}


async def test_create_raises_organization_created_and_member_added(
    recording_db: Database, recorded_events: RecordingDispatcher
) -> None:
    org_id, owner = uuid.uuid4(), new_user()
    async with recording_db.unit_of_work(org_id) as uow:
        await uow.organizations.create("Acme", owner)
        await uow.commit()
    [created] = recorded_events.of_type(OrganizationCreated)
    [added] = recorded_events.of_type(MemberAdded)
    assert (created.aggregate_id, created.name, created.owner_user_id) == (
        str(org_id),
        "Acme",
        owner.id,
    )
    assert (added.aggregate_id, added.user_id, added.role) == (str(org_id), owner.id, "owner")


async def test_create_with_an_existing_users_id_makes_that_user_owner(
    db: Database, founded: FoundedOrganization
) -> None:
    org_id = uuid.uuid4()
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.create("Second", founded.owner.id)
        await uow.commit()
    assert await roles(db, org_id) == {founded.owner.id: "owner"}
    assert await roles(db, founded.org_id) == {founded.owner.id: "owner"}


async def test_create_with_an_unknown_user_id_is_not_found(db: Database) -> None:
    org_id = uuid.uuid4()
    with pytest.raises(NotFound):
        async with db.unit_of_work(org_id) as uow:
            await uow.organizations.create("Ghost", uuid.uuid4())
    async with db.unit_of_work(org_id) as uow:
        assert await uow.organizations.get_or_none(org_id) is None


async def test_create_in_a_tenant_that_already_has_its_organization_conflicts(
    db: Database, founded: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(Conflict):
            await uow.organizations.create("Again", new_user())


async def test_create_with_a_taken_email_conflicts(
    db: Database, founded: FoundedOrganization
) -> None:
    taken = User(email=founded.owner.email.upper(), username=f"x-{secrets.token_hex(6)}")
    async with db.unit_of_work(uuid.uuid4()) as uow:
        with pytest.raises(Conflict):
            await uow.organizations.create("Copycat", taken)


async def test_add_is_refused_in_favour_of_create(db: Database) -> None:
    org_id = uuid.uuid4()
    async with db.unit_of_work(org_id) as uow:
        with pytest.raises(InvalidData):
            await uow.organizations.add(Organization(id=org_id, name="Ownerless"))


# -- inviting members ----------------------------------------------------------------


async def test_invite_member_by_email_leaves_a_pending_membership(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        invitation = await uow.organizations.invite_member(
            founded_other.owner.email.upper(), "admin"
        )
        await uow.commit()
        membership = await uow.organizations.get_membership(founded_other.owner.id)
    assert invitation.user_id == founded_other.owner.id
    assert membership is not None
    assert (membership.role, membership.status) == ("admin", "pending")
    assert await roles(db, founded_other.org_id) == {founded_other.owner.id: "owner"}


async def test_accepting_an_invitation_raises_no_event_in_the_inviting_unit_of_work(
    recording_db: Database,
    recorded_events: RecordingDispatcher,
    founded: FoundedOrganization,
    founded_other: FoundedOrganization,
) -> None:
    # MemberAdded means a member; an invitation is not one yet.
    async with recording_db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.invite_member(founded_other.owner.email)
        await uow.commit()
    assert recorded_events.of_type(MemberAdded) == []


async def test_invite_member_with_an_unknown_email_is_not_found(
    db: Database, founded: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(NotFound):
            await uow.organizations.invite_member("nobody-here@example.com")


async def test_invite_member_twice_conflicts(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.invite_member(founded_other.owner.email)
        with pytest.raises(Conflict):
            await uow.organizations.invite_member(founded_other.owner.email)


async def test_invite_member_with_an_unknown_role_is_invalid(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(InvalidData):
            await uow.organizations.invite_member(founded_other.owner.email, "emperor")


async def test_a_pending_invitation_cannot_change_role(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.invite_member(founded_other.owner.email)
        with pytest.raises(NotFound):
            await uow.organizations.change_role(founded_other.owner.id, "admin")


async def test_remove_member_withdraws_an_invitation(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.invite_member(founded_other.owner.email)
        await uow.commit()
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.remove_member(founded_other.owner.id)
        await uow.commit()
        assert await uow.organizations.get_membership(founded_other.owner.id) is None


async def test_suspending_the_only_owner_is_refused(
    db: Database, founded: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(LastOwnerError):
            await uow.organizations.suspend_member(founded.owner.id)


async def test_a_suspended_member_is_reinstated(db: Database, founded: FoundedOrganization) -> None:
    member = await register(db, founded.org_id)
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.suspend_member(member.id)
        reinstated = await uow.organizations.reinstate_member(member.id)
        await uow.commit()
    assert reinstated.status == "active"


async def test_register_member_creates_the_user_with_a_membership(
    db: Database, founded: FoundedOrganization
) -> None:
    user = new_user()
    user.email = user.email.upper()
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.register_member(user, "viewer")
        await uow.commit()
    assert (await roles(db, founded.org_id))[user.id] == "viewer"
    async with db.unit_of_work(founded.org_id) as uow:
        assert await uow.users.find_by_email(user.email) is not None


@pytest.mark.security
async def test_a_membership_in_another_organization_is_refused(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.unit_of_work(founded.org_id) as uow:
            uow.session.add(
                Membership(org_id=founded_other.org_id, user_id=founded.owner.id, role="owner")
            )
            await uow.session.flush()
    assert founded.owner.id not in await roles(db, founded_other.org_id)


# -- roles, removal and the last owner --------------------------------------------


async def test_get_membership_returns_the_role(db: Database, founded: FoundedOrganization) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        membership = await uow.organizations.get_membership(founded.owner.id)
        assert membership is not None
        assert membership.role == "owner"


async def test_get_membership_of_a_user_of_another_organization_is_none(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        assert await uow.organizations.get_membership(founded_other.owner.id) is None


async def test_change_role_changes_it_and_raises_member_role_changed(
    recording_db: Database, recorded_events: RecordingDispatcher, founded: FoundedOrganization
) -> None:
    member = await register(recording_db, founded.org_id)
    async with recording_db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.change_role(member.id, "admin")
        await uow.commit()
    assert (await roles(recording_db, founded.org_id))[member.id] == "admin"
    [changed] = recorded_events.of_type(MemberRoleChanged)
    assert (changed.user_id, changed.old_role, changed.new_role) == (member.id, "member", "admin")


async def test_change_role_of_a_user_of_another_organization_is_not_found(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(NotFound):
            await uow.organizations.change_role(founded_other.owner.id, "viewer")
    assert await roles(db, founded_other.org_id) == {founded_other.owner.id: "owner"}


async def test_demoting_the_last_owner_is_refused(
    db: Database, founded: FoundedOrganization
) -> None:
    await register(db, founded.org_id, "admin")
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(LastOwnerError):
            await uow.organizations.change_role(founded.owner.id, "admin")


async def test_demoting_an_owner_while_another_remains_succeeds(
    db: Database, founded: FoundedOrganization
) -> None:
    second = await register(db, founded.org_id, "owner")
    async with db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.change_role(founded.owner.id, "member")
        await uow.commit()
    assert await roles(db, founded.org_id) == {founded.owner.id: "member", second.id: "owner"}


async def test_remove_member_removes_only_the_membership(
    recording_db: Database, recorded_events: RecordingDispatcher, founded: FoundedOrganization
) -> None:
    member = await register(recording_db, founded.org_id)
    async with recording_db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.remove_member(member.id)
        await uow.commit()
    assert member.id not in await roles(recording_db, founded.org_id)
    assert [e.user_id for e in recorded_events.of_type(MemberRemoved)] == [member.id]


async def test_removing_the_last_owner_is_refused(
    db: Database, founded: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(LastOwnerError):
            await uow.organizations.remove_member(founded.owner.id)


async def test_remove_member_of_another_organization_is_not_found(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(NotFound):
            await uow.organizations.remove_member(founded_other.owner.id)


async def test_concurrent_demotions_of_the_two_owners_leave_one_owner(
    db: Database, founded: FoundedOrganization
) -> None:
    second = await register(db, founded.org_id, "owner")
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def demote_second() -> None:
        async with db.unit_of_work(founded.org_id) as uow:
            started.set_result(await backend_pid(uow.session))
            await uow.organizations.change_role(second.id, "admin")
            await uow.commit()

    async with db.unit_of_work(founded.org_id) as first:
        await first.organizations.change_role(founded.owner.id, "admin")
        racer = asyncio.create_task(demote_second())
        await wait_until_blocked(db.engine, await started)
        await first.commit()
    with pytest.raises(LastOwnerError):
        await racer
    assert await roles(db, founded.org_id) == {founded.owner.id: "admin", second.id: "owner"}


# -- transferring ownership ------------------------------------------------------------


async def test_transfer_ownership_swaps_the_roles(
    recording_db: Database, recorded_events: RecordingDispatcher, founded: FoundedOrganization
) -> None:
    member = await register(recording_db, founded.org_id)
    async with recording_db.unit_of_work(founded.org_id) as uow:
        await uow.organizations.transfer_ownership(founded.owner.id, member.id)
        await uow.commit()
    assert await roles(recording_db, founded.org_id) == {
        founded.owner.id: "admin",
        member.id: "owner",
    }
    [transferred] = recorded_events.of_type(OwnershipTransferred)
    assert (transferred.from_user_id, transferred.to_user_id) == (founded.owner.id, member.id)


async def test_transfer_ownership_from_a_non_owner_is_invalid(
    db: Database, founded: FoundedOrganization
) -> None:
    admin = await register(db, founded.org_id, "admin")
    member = await register(db, founded.org_id)
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(InvalidData):
            await uow.organizations.transfer_ownership(admin.id, member.id)


async def test_transfer_ownership_to_a_non_member_is_not_found(
    db: Database, founded: FoundedOrganization, founded_other: FoundedOrganization
) -> None:
    async with db.unit_of_work(founded.org_id) as uow:
        with pytest.raises(NotFound):
            await uow.organizations.transfer_ownership(founded.owner.id, founded_other.owner.id)
