"""The unit of work: explicit commit, rollback by default, savepoints, events at commit."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Sequence

import pytest
from sqlalchemy import text

from repositories import PlatformDatabase
from repositories.models import Customer
from tenancy import (
    Conflict,
    Database,
    DatabaseUnavailable,
    NotFound,
    TenancySettings,
    TenantContextRequired,
)
from tenancy.db.engine import create_engine
from tenancy.events.domain_event import DomainEvent
from tenancy.specification import Specification
from tests.unit_of_work.outbox_support import outbox_event_types


class RecordingDispatcher:
    """Collects the events a unit of work hands over after commit."""

    def __init__(self) -> None:
        self.batches: list[list[DomainEvent]] = []

    async def dispatch(self, events: Sequence[DomainEvent]) -> None:
        self.batches.append(list(events))


@pytest.fixture
def dispatcher(db: Database) -> RecordingDispatcher:
    recording = RecordingDispatcher()
    return recording


def uow_db(db: Database, dispatcher: RecordingDispatcher) -> Database:
    return PlatformDatabase(db.engine, db.settings, dispatcher=dispatcher)


async def test_commit_persists_changes(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="c1@example.com"))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.customers.get(customer.id)).email == "c1@example.com"


async def test_leaving_without_commit_rolls_back(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="c2@example.com"))
    async with db.unit_of_work(org_a) as uow:
        assert await uow.customers.get_or_none(customer.id) is None


async def test_exception_rolls_back_and_reraises_typed(db: Database, org_a: uuid.UUID) -> None:
    with pytest.raises(Conflict):
        async with db.unit_of_work(org_a) as uow:
            await uow.customers.add(Customer(email="dup@example.com"))
            await uow.customers.add(Customer(email="dup@example.com"))
    async with db.unit_of_work(org_a) as uow:
        spec = Specification[Customer](Customer.email == "dup@example.com")
        assert await uow.customers.count(spec) == 0


async def test_savepoint_rolls_back_only_its_block(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        kept = await uow.customers.add(Customer(email="kept@example.com"))
        with pytest.raises(Conflict):
            async with uow.savepoint():
                await uow.customers.add(Customer(email="kept@example.com"))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.customers.get(kept.id)).email == "kept@example.com"


async def test_events_reach_dispatcher_only_after_commit(
    db: Database, org_a: uuid.UUID, dispatcher: RecordingDispatcher
) -> None:
    database = uow_db(db, dispatcher)
    async with database.unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email="ev@example.com"))
        assert dispatcher.batches == []
        await uow.commit()
    assert [e.event_type() for e in dispatcher.batches[0]] == ["CustomerCreated"]


async def test_rolled_back_work_dispatches_nothing(
    db: Database, org_a: uuid.UUID, dispatcher: RecordingDispatcher
) -> None:
    database = uow_db(db, dispatcher)
    async with database.unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email="gone@example.com"))
    assert dispatcher.batches == []


async def test_events_of_a_rolled_back_savepoint_are_discarded(
    db: Database, org_a: uuid.UUID, dispatcher: RecordingDispatcher
) -> None:
    database = uow_db(db, dispatcher)
    async with database.unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email="first@example.com"))
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                await uow.customers.add(Customer(email="second@example.com"))
                raise RuntimeError("abandon")
        await uow.commit()
    created = [e.model_dump()["data"]["email"] for e in dispatcher.batches[0]]
    assert created == ["first@example.com"]


async def test_unit_of_work_without_tenant_is_refused(db: Database) -> None:
    with pytest.raises(TenantContextRequired):
        db.unit_of_work()


async def test_get_of_another_tenants_id_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    async with db.unit_of_work(org_b) as uow:
        theirs = await uow.customers.add(Customer(email="b@example.com"))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.customers.get(theirs.id)


async def test_committed_add_leaves_its_created_event_in_the_outbox(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="outbox@example.com"))
        await uow.commit()
    assert await outbox_event_types(db, org_a, customer.id) == ["CustomerCreated"]


async def test_rolled_back_add_leaves_no_event_in_the_outbox(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="no-outbox@example.com"))
    assert await outbox_event_types(db, org_a, customer.id) == []


async def test_add_inside_a_rolled_back_savepoint_leaves_no_event(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(RuntimeError):
            async with uow.savepoint():
                customer = await uow.customers.add(Customer(email="sp-outbox@example.com"))
                raise RuntimeError("abandon")
        await uow.commit()
    assert await outbox_event_types(db, org_a, customer.id) == []


async def test_unit_of_work_goes_on_after_commit(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        first = await uow.customers.add(Customer(email="one@example.com"))
        await uow.commit()
        second = await uow.customers.add(Customer(email="two@example.com"))
        await uow.customers.update(first.id, {"name": "renamed"})
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.customers.get(first.id)).name == "renamed"
        assert await uow.customers.get_or_none(second.id) is not None


async def test_unreachable_database_is_a_typed_error(settings: TenancySettings) -> None:
    unreachable = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://tenancy_app:x@127.0.0.1:1/nowhere"}
    )
    database = PlatformDatabase(create_engine(unreachable), unreachable)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with database.unit_of_work(uuid.uuid4()) as uow:
                await uow.customers.count()
    finally:
        await database.dispose()


async def test_finished_unit_of_work_is_freed_without_the_garbage_collector(
    db: Database, org_a: uuid.UUID
) -> None:
    # Cycles between a unit of work and its repositories would be left to the cyclic
    # collector, whose passes grow costly under load; reference counting must do.
    gc.disable()
    try:
        async with db.unit_of_work(org_a) as uow:
            repository_ref = weakref.ref(uow.customers)
            await uow.customers.add(Customer(email="freed@example.com"))
            await uow.customers.list()
            await uow.commit()
        uow_ref = weakref.ref(uow)
        del uow
        assert uow_ref() is None
        assert repository_ref() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("path", ["driver", "core"])
async def test_connection_lost_mid_transaction_is_a_typed_error_and_the_pool_recovers(
    settings: TenancySettings, org_a: uuid.UUID, path: str
) -> None:
    database = PlatformDatabase(create_engine(settings), settings)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with database.unit_of_work(org_a) as uow:
                driver = await uow.driver()
                pid = await driver.fetchval("SELECT pg_backend_pid()")
                async with database.engine.connect() as other:
                    # Waits (up to 5 s) until the backend has exited.
                    await other.execute(
                        text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
                    )
                if path == "driver":
                    await uow.customers.get_or_none(uuid.uuid4())
                else:
                    await uow.customers.count()
        async with database.unit_of_work(org_a) as uow:
            assert await uow.customers.count() >= 0
    finally:
        await database.dispose()
