"""Fixtures of the repository suite (each engineer's fixtures under distinct names)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from repositories.models import User
from tenancy import Database
from tests.repositories.members_support import new_user
from tests.repositories.payments_support import RecordingDispatcher, recording


@pytest.fixture
def payment_events() -> RecordingDispatcher:
    """Events handed over by units of work of ``payment_events_db`` after commit."""
    return RecordingDispatcher()


@pytest.fixture
def payment_events_db(db: Database, payment_events: RecordingDispatcher) -> Database:
    """The test ``Database`` whose committed events land in ``payment_events``."""
    return recording(db, payment_events)


# -- users, organizations, agents, customers ------------------------------------


@dataclass(frozen=True)
class FoundedOrganization:
    """An organization created through ``OrganizationRepository.create`` and its owner."""

    org_id: uuid.UUID
    owner: User


async def found_organization(db: Database) -> FoundedOrganization:
    """Create a new organization with a newly registered owner, committed."""
    org_id = uuid.uuid4()
    owner = new_user("owner")
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.create(f"Org {owner.username}", owner)
        await uow.commit()
    return FoundedOrganization(org_id, owner)


@pytest.fixture
async def founded(db: Database) -> FoundedOrganization:
    """A fresh organization with its first owner."""
    return await found_organization(db)


@pytest.fixture
async def founded_other(db: Database) -> FoundedOrganization:
    """Another fresh organization with its own first owner."""
    return await found_organization(db)


@pytest.fixture
def recorded_events() -> RecordingDispatcher:
    """Events handed over by units of work of ``recording_db`` after commit."""
    return RecordingDispatcher()


@pytest.fixture
def recording_db(db: Database, recorded_events: RecordingDispatcher) -> Database:
    """The test ``Database`` whose committed events land in ``recorded_events``."""
    return recording(db, recorded_events)
