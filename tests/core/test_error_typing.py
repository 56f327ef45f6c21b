"""Every error that leaves the library is a ``TenancyError``: lock timeouts, read-only
transactions, aborted transactions, driver errors, over-long parameter lists, and
SQLSTATEs with no specific meaning. None carries SQL text or values.

Each is provoked for real against Postgres as the app role.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy import select, text

from repositories.models import Customer
from tenancy import (
    Conflict,
    Database,
    InvalidData,
    RetryableError,
    TenancyError,
)
from tenancy.db.engine import MAX_PARAMETERS
from tenancy.errors import DatabaseError, ReadOnlyDatabase, TransactionAborted, translate
from tests.core.tenant_graph import Tenants


async def test_lock_timeout_is_retryable(db: Database, tenants: Tenants) -> None:
    customer_id = tenants.a.rows["customers"]["id"]
    async with db.unit_of_work(tenants.a.org_id) as holder:
        await holder.connection().execute(
            text("SELECT 1 FROM customers WHERE id = :id FOR UPDATE"), {"id": customer_id}
        )
        with pytest.raises(RetryableError, match="55P03"):
            async with db.unit_of_work(tenants.a.org_id) as waiter:
                await waiter.connection().execute(text("SET LOCAL lock_timeout = '50ms'"))
                await waiter.connection().execute(
                    text("SELECT 1 FROM customers WHERE id = :id FOR UPDATE"), {"id": customer_id}
                )


async def test_write_in_a_read_only_transaction_is_read_only_database(
    db: Database, tenants: Tenants
) -> None:
    with pytest.raises(ReadOnlyDatabase):
        async with db.unit_of_work(tenants.a.org_id) as uow:
            await uow.connection().execute(text("SET TRANSACTION READ ONLY"))
            await uow.customers.add(Customer(name="n", email=f"{uuid.uuid4().hex}@ro.example"))


async def test_statement_after_a_caught_error_is_transaction_aborted(
    db: Database, tenants: Tenants
) -> None:
    email = tenants.a.rows["customers"]["email"]
    async with db.unit_of_work(tenants.a.org_id) as uow:
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(name="dup", email=email))
        with pytest.raises(TransactionAborted):
            await uow.customers.count()


async def test_commit_after_a_caught_error_is_transaction_aborted_and_keeps_nothing(
    db: Database, tenants: Tenants
) -> None:
    email = tenants.a.rows["customers"]["email"]
    kept = f"{uuid.uuid4().hex}@kept.example"
    async with db.unit_of_work(tenants.a.org_id) as uow:
        await uow.customers.add(Customer(name="kept", email=kept))
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(name="dup", email=email))
        with pytest.raises(TransactionAborted):
            await uow.commit()

    async with db.unit_of_work(tenants.a.org_id) as uow:
        found = (await uow.session.execute(select(Customer).where(Customer.email == kept))).all()
    assert found == []


async def test_unit_of_work_is_usable_after_an_aborted_commit(
    db: Database, tenants: Tenants
) -> None:
    email = tenants.a.rows["customers"]["email"]
    second = f"{uuid.uuid4().hex}@second.example"
    async with db.unit_of_work(tenants.a.org_id) as uow:
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(name="dup", email=email))
        with pytest.raises(TransactionAborted):
            await uow.commit()
        added = await uow.customers.add(Customer(name="second", email=second))
        await uow.commit()

    async with db.unit_of_work(tenants.a.org_id) as uow:
        assert (await uow.customers.get(added.id)).email == second


async def test_savepoint_recovers_from_a_conflict_and_the_rest_commits(
    db: Database, tenants: Tenants
) -> None:
    email = tenants.a.rows["customers"]["email"]
    kept = f"{uuid.uuid4().hex}@kept.example"
    async with db.unit_of_work(tenants.a.org_id) as uow:
        added = await uow.customers.add(Customer(name="kept", email=kept))
        with pytest.raises(Conflict):
            async with uow.savepoint():
                await uow.customers.add(Customer(name="dup", email=email))
        await uow.commit()

    async with db.unit_of_work(tenants.a.org_id) as uow:
        assert (await uow.customers.get(added.id)).email == kept


async def test_too_many_parameters_is_invalid_data_naming_the_limit(
    db: Database, tenants: Tenants
) -> None:
    ids = [uuid.uuid4() for _ in range(40_000)]
    with pytest.raises(InvalidData, match=str(MAX_PARAMETERS)) as caught:
        async with db.unit_of_work(tenants.a.org_id) as uow:
            await uow.session.execute(select(Customer.id).where(Customer.id.in_(ids)))
    assert len(str(caught.value)) < 200


async def test_sqlstate_without_a_meaning_is_a_database_error_without_sql(
    db: Database, tenants: Tenants
) -> None:
    with pytest.raises(DatabaseError) as caught:
        async with db.unit_of_work(tenants.a.org_id) as uow:
            await uow.connection().execute(text("SELECT no_such_column_xyz FROM customers"))
    assert caught.value.sqlstate == "42703"
    assert "no_such_column_xyz" not in f"{caught.value} {caught.value.args!r}"


async def test_driver_interface_error_is_a_tenancy_error(db: Database, tenants: Tenants) -> None:
    async with db.unit_of_work(tenants.a.org_id) as uow:
        driver = await uow.driver()
        with pytest.raises(asyncpg.InterfaceError) as raised:
            # asyncpg refuses a second transaction() on a manually started one.
            await driver.transaction().start()
    assert isinstance(translate(raised.value), TenancyError)


def test_translation_of_an_adapter_error_keeps_the_sqlstate() -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    cause = asyncpg.exceptions.LockNotAvailableError("could not obtain lock on row")
    adapter_error = AsyncAdapt_asyncpg_dbapi.Error("could not obtain lock")
    adapter_error.__cause__ = cause

    assert isinstance(translate(adapter_error), RetryableError)
