"""The organization (tenant) and its memberships.

The organization is the aggregate its membership events belong to. Every change
that can take an owner away (remove, demote, transfer) first locks the
organization row ``FOR UPDATE``: two such changes in one organization then run
one after the other, and the second counts the owners the first left behind, so
concurrent demotions can never leave an organization without an owner.

Nobody joins without consent. ``invite_member`` writes a pending membership that
shows this organization nothing of the user; the user turns it active with the
invitation token (``Accounts.accept_invitation``, without a tenant). The database
holds the same line: an active membership is written only by the definer calls
that found an organization with its owner and register a new user as a member
(``found_organization``, ``register_member``; each writes its events too, so
Citus sees one role change the tenant's shards in the transaction). An
invitation's token hash is unique across tenants through its lookup row
(``invitation_tokens``), written before the membership that references it;
accepting the invitation deletes it, and so does withdrawing it.
"""

from __future__ import annotations

import builtins
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import make_transient_to_detached

from repositories.account import token_hash
from repositories.base import AsyncRepository
from repositories.domain_events import (
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    OrganizationCreated,
    OwnershipTransferred,
)
from repositories.email_address import email_key
from repositories.errors import LastOwnerError
from repositories.models import (
    InvitationToken,
    MemberRole,
    Membership,
    MembershipStatus,
    Organization,
    OrganizationStatus,
    User,
)
from repositories.user import (
    Member,
    list_members,
    new_user_values,
    parse_role,
    user_created_event,
)
from tenancy.context import session_tenant
from tenancy.errors import ForeignKeyViolation, InvalidData, NotFound
from tenancy.events.domain_event import DomainEvent
from tenancy.events.outbox import outbox_events_json
from tenancy.schema.declarative import utcnow

_OWNER = MemberRole.OWNER.value
_ACTIVE = MembershipStatus.ACTIVE.value
_SUSPENDED = MembershipStatus.SUSPENDED.value
_PENDING = MembershipStatus.PENDING.value
_MEMBERSHIP_USER_FK = "fk_memberships_user_id_users"
_MEMBERSHIP_ORG_FK = "fk_memberships_org_id_organizations"
# Each identity change is one definer call that writes its events too: Citus lets
# no other role touch the tenant's shards in the transaction after it (0016).
_FOUND = text(
    "SELECT public.found_organization(:owner, :name,"
    " CAST(CAST(:new_owner AS text) AS jsonb), CAST(CAST(:events AS text) AS jsonb))"
)
_REGISTER = text(
    "SELECT public.register_member(:user_id, CAST(CAST(:new_user AS text) AS jsonb),"
    " :role, CAST(CAST(:events AS text) AS jsonb))"
)
_REMOVE = text("SELECT public.remove_membership(:user_id, CAST(CAST(:events AS text) AS jsonb))")
_FIND_INVITEE = text("SELECT find_invitee(:email)")
#: How long an invitation token stays valid unless the caller says otherwise.
INVITATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Invitation:
    """A pending membership and the one-time token to deliver to the invited user only."""

    user_id: uuid.UUID
    token: str
    expires_at: datetime


class OrganizationRepository(AsyncRepository[Organization, uuid.UUID]):
    """The current tenant's organization: creation with its first owner, and members."""

    model = Organization
    sort_keys: ClassVar = {"created_at": "created_at", "id": "id", "name": "name"}

    async def add(self, obj: Organization) -> Organization:
        """Refuse: an organization is created with its first owner, by ``create``.

        Raises:
            InvalidData: always.
        """
        raise InvalidData("create an organization with create(name, owner)")

    async def add_many(self, objs: Sequence[Organization]) -> builtins.list[Organization]:
        """Refuse: an organization is created with its first owner, by ``create``.

        Raises:
            InvalidData: always.
        """
        raise InvalidData("create an organization with create(name, owner)")

    async def create(self, name: str, owner: User | uuid.UUID) -> Organization:
        """Create the current tenant's organization with ``owner`` as its first owner.

        The unit of work's tenant is the new organization's id
        (``db.unit_of_work(new_org_id)``): the row policy admits no other row.
        ``owner`` is a new ``User`` (no credentials: ``Accounts.register`` sets
        those), or the id of the signed-in user founding it. One definer call
        (``found_organization``) writes the organization, the new user, the owner's
        membership and the events; on Citus nothing else of this tenant can be
        written in the same unit of work after it.

        Raises:
            Conflict: the organization exists, or the new user's email or username is taken.
            NotFound: no user has the given id.
            InvalidData: ``owner`` carries a password hash, or its email is refused.
        """
        org_id = session_tenant(self.session.sync_session)
        events: builtins.list[DomainEvent] = []
        new_owner = None
        if isinstance(owner, User):
            new_owner = _user_json(new_user_values(owner))
            events.append(user_created_event(owner))
            user_id = owner.id
        else:
            user_id = owner
        events += [
            OrganizationCreated(aggregate_id=str(org_id), name=name, owner_user_id=user_id),
            _member_added(org_id, user_id, MemberRole.OWNER),
        ]
        params = {"owner": user_id, "name": name, "new_owner": new_owner}
        created_at = await self._changing_identity(_FOUND, params, events)
        organization = Organization(
            id=org_id, name=name, status=OrganizationStatus.ACTIVE.value, created_at=created_at
        )
        # Written by the function: the instance joins the session as loaded, not new.
        make_transient_to_detached(organization)
        self.session.add(organization)
        return self._see(organization)

    async def current(self) -> Organization:
        """Return the current tenant's organization.

        Raises:
            NotFound: the organization does not exist (yet).
        """
        return await self.get(session_tenant(self.session.sync_session))

    async def get_membership(self, user_id: uuid.UUID) -> Membership | None:
        """Return ``user_id``'s membership in the current organization, or ``None``."""
        # populate_existing: after the lock, the role must be the committed one, not a cached one.
        statement = (
            select(Membership)
            .where(Membership.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        membership: Membership | None = (await self._execute(statement)).scalars().first()
        return membership

    async def members(self, role: MemberRole | str | None = None) -> builtins.list[Member]:
        """Return the members with their roles, oldest first (optionally of one role).

        Raises:
            InvalidData: ``role`` is not a member role.
        """
        return await list_members(self.session, role)

    async def invite_member(
        self,
        email: str,
        role: MemberRole | str = MemberRole.MEMBER,
        *,
        lifetime: timedelta = INVITATION_LIFETIME,
    ) -> Invitation:
        """Invite the registered user with ``email``: a pending membership and its token.

        The membership shows this organization nothing of the user until the user
        accepts with the token (``Accounts.accept_invitation``); deliver the token
        to the address only. ``remove_member`` withdraws the invitation.

        Raises:
            NotFound: no active user has this email (what sign-up would reveal too).
            Conflict: the user is already a member or invited.
            InvalidData: ``role`` is unknown, or ``lifetime`` is not positive.
        """
        parsed = parse_role(role)
        if lifetime <= timedelta(0):
            raise InvalidData("an invitation must expire in the future")
        user_id = (await self._execute(_FIND_INVITEE.bindparams(email=email_key(email)))).scalar()
        if user_id is None:
            raise NotFound("no user has this email")
        token = secrets.token_urlsafe(32)
        hashed = token_hash(token)
        expires_at = utcnow() + lifetime
        # The lookup row first: the membership references it (org_id from the default).
        await self._execute(insert(InvitationToken).values(token_hash=hashed, user_id=user_id))
        membership = Membership(
            user_id=user_id,
            role=parsed.value,
            status=_PENDING,
            invitation_token_hash=hashed,
            invitation_expires_at=expires_at,
        )
        self.session.add(membership)
        await self._flush()
        return Invitation(user_id=user_id, token=token, expires_at=expires_at)

    async def suspend_member(self, user_id: uuid.UUID) -> Membership:
        """Suspend a member here only: the middleware refuses it, other organizations do not.

        Raises:
            NotFound: the user is not a member here (an invitation is not a member).
            LastOwnerError: it would leave no active owner.
        """
        await self._lock()
        membership = await self._membership(user_id)
        if membership.status == _SUSPENDED:
            return membership
        if membership.role == _OWNER:
            await self._require_another_owner()
        membership.status = _SUSPENDED
        await self._flush()
        return membership

    async def reinstate_member(self, user_id: uuid.UUID) -> Membership:
        """Lift this organization's suspension of a member.

        Raises:
            NotFound: the user is not a member here.
        """
        membership = await self._membership(user_id)
        if membership.status != _ACTIVE:
            membership.status = _ACTIVE
            await self._flush()
        return membership

    async def register_member(self, user: User, role: MemberRole | str = MemberRole.MEMBER) -> User:
        """Create the new ``user`` (no credentials) as an active member of this organization.

        One definer call (``register_member``) writes the user, the membership and
        the events.

        Raises:
            Conflict: the email or username is taken.
            NotFound: the organization does not exist.
            InvalidData: ``role`` is unknown, or the user carries a password hash.
        """
        parsed = parse_role(role)
        organization = await self.current()
        values = new_user_values(user)
        events = [user_created_event(user), _member_added(organization.id, user.id, parsed)]
        params = {"user_id": user.id, "new_user": _user_json(values), "role": parsed.value}
        await self._changing_identity(_REGISTER, params, events)
        return user

    async def change_role(self, user_id: uuid.UUID, role: MemberRole | str) -> Membership:
        """Give a member another role.

        Raises:
            NotFound: the user is not a member here.
            LastOwnerError: it would demote the only owner.
            InvalidData: ``role`` is unknown.
        """
        new_role = parse_role(role)
        organization = await self._lock()
        membership = await self._membership(user_id)
        old_role = membership.role
        if old_role == new_role.value:
            return membership
        if old_role == _OWNER:
            await self._require_another_owner()
        membership.role = new_role.value
        await self._flush()
        organization.record_event(_role_changed(organization.id, user_id, old_role, new_role))
        return membership

    async def remove_member(self, user_id: uuid.UUID) -> None:
        """Remove a user from this organization (the user itself stays), or withdraw its invitation.

        Raises:
            NotFound: the user is neither a member here nor invited.
            LastOwnerError: the user is the only owner.
        """
        organization = await self._lock()
        invitation = await self.get_membership(user_id)
        if invitation is not None and invitation.status == _PENDING:
            await self._withdraw(invitation)
            return
        membership = await self._membership(user_id)
        if membership.role == _OWNER:
            await self._require_another_owner()
        # The definer function drops the organization from the user's member_of with
        # the row, and writes the event.
        removed = MemberRemoved(aggregate_id=str(organization.id), user_id=user_id)
        await self._changing_identity(_REMOVE, {"user_id": user_id}, [removed])
        self.session.expunge(membership)

    async def transfer_ownership(
        self,
        from_user_id: uuid.UUID,
        to_user_id: uuid.UUID,
        *,
        demote_to: MemberRole | str = MemberRole.ADMIN,
    ) -> None:
        """Make ``to_user_id`` an owner and ``from_user_id`` a ``demote_to`` member.

        Raises:
            NotFound: either user is not a member here.
            InvalidData: ``from_user_id`` is not an owner, both are the same user,
                or ``demote_to`` is unknown.
        """
        demoted = parse_role(demote_to)
        if from_user_id == to_user_id:
            raise InvalidData("ownership must move to another member")
        organization = await self._lock()
        source = await self._membership(from_user_id)
        target = await self._membership(to_user_id)
        if source.role != _OWNER:
            raise InvalidData("only an owner can transfer ownership")
        changes = [(target, MemberRole.OWNER), (source, demoted)]
        events = []
        for membership, new_role in changes:
            if membership.role != new_role.value:
                events.append(
                    _role_changed(organization.id, membership.user_id, membership.role, new_role)
                )
                membership.role = new_role.value
        await self._flush()
        for event in events:
            organization.record_event(event)
        organization.record_event(
            OwnershipTransferred(
                aggregate_id=str(organization.id), from_user_id=from_user_id, to_user_id=to_user_id
            )
        )

    # -- helpers -------------------------------------------------------------

    async def _lock(self) -> Organization:
        # Serialises every owner-reducing change of this organization (see module doc).
        statement = (
            select(Organization)
            .where(Organization.id == session_tenant(self.session.sync_session))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        organization: Organization | None = (await self._execute(statement)).scalars().first()
        if organization is None:
            raise NotFound("the organization does not exist")
        return self._see(organization)

    async def _membership(self, user_id: uuid.UUID) -> Membership:
        membership = await self.get_membership(user_id)
        # A pending invitation is no membership yet; the database refuses to change it.
        if membership is None or membership.status == _PENDING:
            raise NotFound(f"user {user_id} is not a member of this organization")
        return membership

    async def _withdraw(self, invitation: Membership) -> None:
        # No event: an invitation was never a membership (invite_member raises none).
        hashed = invitation.invitation_token_hash
        await self.session.delete(invitation)
        await self._flush()
        if hashed is not None:
            # After the membership, which references it: the token stops working.
            statement = delete(InvitationToken).where(InvitationToken.token_hash == hashed)
            await self._execute(statement)

    async def _require_another_owner(self) -> None:
        statement = (
            select(func.count())
            .select_from(Membership)
            .where(Membership.role == _OWNER, Membership.status == _ACTIVE)
        )
        owners = int((await self._execute(statement)).scalar_one())
        if owners <= 1:
            raise LastOwnerError("the organization must keep at least one owner")

    async def _changing_identity(
        self, call: Any, params: dict[str, Any], events: builtins.list[DomainEvent]
    ) -> Any:
        # The function writes the events; the unit of work dispatches them after commit.
        try:
            result = await self._execute(call, {**params, "events": outbox_events_json(events)})
        except ForeignKeyViolation as exc:
            if exc.constraint == _MEMBERSHIP_USER_FK:
                raise NotFound(f"user {params.get('owner')} does not exist") from exc
            if exc.constraint == _MEMBERSHIP_ORG_FK:
                raise NotFound("the organization does not exist") from exc
            raise
        collector = self._collector
        if collector is not None:
            collector.events_written(events)
        return result.scalar()


def _user_json(values: dict[str, Any]) -> str:
    return json.dumps(
        {
            "email": values["email"],
            "username": values["username"],
            "display_name": values["display_name"],
            "created_at": values["created_at"].isoformat(),
        }
    )


def _member_added(org_id: uuid.UUID, user_id: uuid.UUID, role: MemberRole) -> MemberAdded:
    return MemberAdded(aggregate_id=str(org_id), user_id=user_id, role=role.value)


def _role_changed(
    org_id: uuid.UUID, user_id: uuid.UUID, old_role: str, new_role: MemberRole
) -> MemberRoleChanged:
    return MemberRoleChanged(
        aggregate_id=str(org_id), user_id=user_id, old_role=old_role, new_role=new_role.value
    )
