"""Repositories over a plain session and inside a unit of work share one interface."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect

from repositories.customer import CustomerRepository
from repositories.models import Customer
from tenancy import Database


async def test_over_a_plain_session_the_repository_keeps_aggregates_and_their_events(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.session(org_a) as session:
        repository = CustomerRepository(session)
        customer = await repository.add(Customer(email=f"{uuid.uuid4().hex}@example.com"))
        assert list(repository.seen.values()) == [customer]
        assert [type(e).__name__ for e in customer.pull_events()] == ["CustomerCreated"]
        assert inspect(customer).session is session.sync_session


async def test_in_a_unit_of_work_the_created_event_goes_out_with_the_row(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email=f"{uuid.uuid4().hex}@example.com"))
        assert uow.customers.seen == {}
        assert customer.pull_events() == []
