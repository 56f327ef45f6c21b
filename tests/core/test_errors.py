"""Database errors leave ``db.session`` as typed ``TenancyError``s, by SQLSTATE and constraint.

Every error here is provoked for real against Postgres as the app role. Messages
name constraints, never values, so they cannot carry another tenant's data.
"""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from repositories import PlatformDatabase
from repositories.models import Customer, PaymentMethod, User, Wallet
from repositories.wallets.repository import WalletRepository
from tenancy import (
    Conflict,
    Database,
    DatabaseUnavailable,
    ForeignKeyViolation,
    InvalidData,
    IsolationViolation,
    RetryableError,
    TenancyError,
    TenancySettings,
)
from tenancy.errors import translate
from tenancy.relay.local_broker import free_port
from tests.core.tenant_graph import Tenants


def _leaks(error: TenancyError, *values: object) -> list[str]:
    """Return the values of ``values`` that appear in the error's message or arguments."""
    shown = f"{error} {error!r} {error.args!r}"
    return [str(v) for v in values if str(v) in shown]


async def test_duplicate_in_a_tenant_is_a_conflict_naming_the_constraint(
    db: Database, tenants: Tenants
) -> None:
    email = tenants.a.rows["customers"]["email"]

    with pytest.raises(Conflict) as caught:
        async with db.session(tenants.a.org_id) as session:
            session.add(Customer(email=email))

    assert caught.value.constraint == "uq_customers_org_id_email"


async def test_same_email_in_two_tenants_is_no_conflict(db: Database, tenants: Tenants) -> None:
    email = tenants.b.rows["customers"]["email"]

    async with db.session(tenants.a.org_id) as session:
        session.add(Customer(email=email))

    async with db.session(tenants.a.org_id) as session:
        emails = set((await session.execute(select(Customer.email))).scalars())
    assert email in emails


async def test_reference_to_other_tenants_parent_is_a_foreign_key_violation(
    db: Database, tenants: Tenants
) -> None:
    with pytest.raises(ForeignKeyViolation) as caught:
        async with db.session(tenants.a.org_id) as session:
            session.add(PaymentMethod(customer_id=tenants.b.id("customers"), type="card"))

    assert caught.value.constraint == "fk_payment_methods_org_id_customer_id_customers"


async def test_write_into_other_tenant_is_an_isolation_violation(
    db: Database, tenants: Tenants
) -> None:
    with pytest.raises(IsolationViolation):
        async with db.session(tenants.a.org_id) as session:
            session.add(Customer(org_id=tenants.b.org_id, email="x@example.com"))


async def test_check_violation_is_invalid_data_naming_the_constraint(
    db: Database, tenants: Tenants
) -> None:
    with pytest.raises(InvalidData) as caught:
        async with db.session(tenants.a.org_id) as session:
            session.add(Customer(email="Not-Lower@Example.com"))

    assert caught.value.constraint == "ck_customers_email_lowercase"


async def test_not_null_violation_is_invalid_data(db: Database, tenants: Tenants) -> None:
    with pytest.raises(InvalidData):
        async with db.session(tenants.a.org_id) as session:
            await session.execute(insert(Customer).values(email=None))


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        pytest.param(
            "INSERT INTO customers (email, name) VALUES (:e, :v)", "a\x00b", id="NUL byte"
        ),
        pytest.param("SELECT CAST(CAST(:v AS text) AS date)", "2026-13-45", id="bad date"),
        pytest.param("SELECT CAST(CAST(:v AS text) AS uuid)", "not a uuid", id="bad uuid"),
        pytest.param("SELECT CAST(CAST(:v AS text) AS int) / 0", "424242", id="division by zero"),
    ],
)
async def test_data_exception_is_invalid_data_without_the_value(
    db: Database, tenants: Tenants, statement: str, params: str
) -> None:
    with pytest.raises(InvalidData) as caught:
        async with db.session(tenants.a.org_id) as session:
            await session.execute(text(statement), {"e": "nul@example.com", "v": params})

    assert _leaks(caught.value, params) == []


async def test_serialization_failure_is_retryable(db: Database, tenants: Tenants) -> None:
    first_read, second_read, first_committed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def repeatable_read(session: AsyncSession) -> None:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await session.execute(select(Customer.name))

    async def first() -> None:
        async with db.session(tenants.a.org_id) as session:
            await repeatable_read(session)
            first_read.set()
            await second_read.wait()
            await session.execute(update(Customer).values(name="first"))
        first_committed.set()

    async def second() -> None:
        async with db.session(tenants.a.org_id) as session:
            await first_read.wait()
            await repeatable_read(session)
            second_read.set()
            await first_committed.wait()
            await session.execute(update(Customer).values(name="second"))

    results = await asyncio.gather(first(), second(), return_exceptions=True)

    assert results[0] is None
    assert isinstance(results[1], RetryableError)


@pytest.mark.slow
async def test_deadlock_is_retryable(db: Database, tenants: Tenants) -> None:
    # Waits for Postgres' deadlock_timeout (1 s by default) before one side is chosen.
    one, two = tenants.a.id("customers"), uuid.uuid4()
    async with db.session(tenants.a.org_id) as session:
        session.add(Customer(id=two, email=f"{two.hex}@example.com"))
    both_locked = asyncio.Barrier(2)

    async def lock_in_order(first: uuid.UUID, then: uuid.UUID) -> None:
        async with db.session(tenants.a.org_id) as session:
            await _lock(session, first)
            await both_locked.wait()
            await _lock(session, then)

    results = await asyncio.gather(
        lock_in_order(one, two), lock_in_order(two, one), return_exceptions=True
    )

    assert sorted(type(r).__name__ for r in results) == ["NoneType", "RetryableError"]


async def _lock(session: AsyncSession, customer_id: uuid.UUID) -> None:
    await session.execute(
        text("SELECT 1 FROM customers WHERE id = :id FOR UPDATE"), {"id": customer_id}
    )


async def test_unreachable_database_is_unavailable(settings: TenancySettings) -> None:
    url = settings.app_url().set(port=free_port())
    unreachable = settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )

    with pytest.raises(DatabaseUnavailable):
        await PlatformDatabase.connect(unreachable)


async def test_session_on_unreachable_database_is_unavailable(settings: TenancySettings) -> None:
    url = settings.app_url().set(port=free_port())
    unreachable = settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )
    database = await PlatformDatabase.connect(unreachable, check_role=False)

    try:
        with pytest.raises(DatabaseUnavailable):
            async with database.session(uuid.uuid4()) as session:
                await session.execute(text("SELECT 1"))
    finally:
        await database.dispose()


@pytest.fixture
async def exhausted_db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A one-connection ``Database`` whose only connection is held by another task."""
    database = await PlatformDatabase.connect(
        settings.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2})
    )
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    yield database
    release.set()
    await holder
    await database.dispose()


async def test_pool_timeout_is_unavailable(exhausted_db: Database) -> None:
    with pytest.raises(DatabaseUnavailable):
        async with exhausted_db.session(uuid.uuid4()) as session:
            await session.execute(text("SELECT 1"))


def test_errors_that_are_not_from_the_database_are_not_translated() -> None:
    assert translate(ValueError("application bug")) is None


async def test_conflict_on_a_global_key_does_not_reveal_the_other_tenant(
    db: Database, tenants: Tenants
) -> None:
    theirs = tenants.b.rows["wallets"]

    with pytest.raises(Conflict) as caught:
        async with db.session(tenants.a.org_id) as session:
            wallets = WalletRepository(session)
            await wallets.add(Wallet(chain=theirs["chain"], address=theirs["address"]))

    # The address's lookup row, which the repository writes first, is taken.
    assert caught.value.constraint == "pk_wallet_addresses"
    assert _leaks(caught.value, theirs["address"], theirs["id"], tenants.b.org_id) == []


async def test_foreign_key_violation_does_not_reveal_the_referenced_key(
    db: Database, tenants: Tenants
) -> None:
    theirs = tenants.b.id("customers")

    with pytest.raises(ForeignKeyViolation) as caught:
        async with db.session(tenants.a.org_id) as session:
            session.add(PaymentMethod(customer_id=theirs, type="card"))

    assert _leaks(caught.value, theirs, tenants.b.org_id, tenants.a.org_id) == []


async def test_conflict_does_not_repeat_the_duplicate_value(db: Database, tenants: Tenants) -> None:
    email = tenants.a.rows["customers"]["email"]

    with pytest.raises(Conflict) as caught:
        async with db.session(tenants.a.org_id) as session:
            session.add(Customer(email=email))

    assert _leaks(caught.value, email, tenants.a.org_id) == []


async def test_isolation_violation_does_not_reveal_the_row(db: Database, tenants: Tenants) -> None:
    email = f"{uuid.uuid4().hex}@example.com"

    with pytest.raises(IsolationViolation) as caught:
        async with db.session(tenants.a.org_id) as session:
            session.add(Customer(org_id=tenants.b.org_id, email=email))

    assert _leaks(caught.value, email, tenants.b.org_id) == []


async def test_error_chain_does_not_quote_the_statements_values(
    db: Database, tenants: Tenants
) -> None:
    secret = f"hash-{uuid.uuid4().hex}"
    duplicate = {
        "id": uuid.uuid4(),
        "email": tenants.b.rows["users"]["email"],
        "username": f"u{uuid.uuid4().hex}",
        "display_name": secret,
    }

    with pytest.raises(Conflict) as caught:
        async with db.session(tenants.a.org_id) as session:
            await session.execute(insert(User).values(duplicate))

    assert secret not in "".join(traceback.format_exception(caught.value))
