"""Constraint errors carry nothing of another tenant, from the server or from the library.

Postgres leaves key values and failing rows out of its error details whenever
row-level security is enabled on the table concerned (``ri_ReportViolation`` and
``ExecBuildSlotValueDescription``), so the raw asyncpg errors name only the
constraint; the library's errors then name nothing but the constraint either.
A reference to another tenant's row fails exactly like one to a row that does
not exist, so the error is no existence oracle.
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from repositories.models import Customer, PaymentMethod, Wallet
from repositories.wallets.repository import WalletRepository
from tenancy import Conflict, Database, ForeignKeyViolation, InvalidData, IsolationViolation
from tenancy.db.session import set_local_statement
from tests.security.support import Seeded, seed_tenant

pytestmark = pytest.mark.security

REFERENCE = "INSERT INTO payment_methods (customer_id, type) VALUES ($1, 'card')"


async def raw_error(
    connection: asyncpg.Connection, org_id: uuid.UUID, sql: str, *args: object
) -> asyncpg.PostgresError:
    """Run ``sql`` for ``org_id`` on a raw connection and return the error it raised."""
    with pytest.raises(asyncpg.PostgresError) as raised:
        async with connection.transaction():
            await connection.execute(set_local_statement(org_id))
            await connection.execute(sql, *args)
    return raised.value


def fields(error: asyncpg.PostgresError) -> tuple[object, ...]:
    """Return everything the server reported about ``error``."""
    return tuple(sorted(error.as_dict().items()))


async def test_reference_to_another_tenants_row_fails_like_a_missing_row(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    theirs = await raw_error(app_conn, a.org_id, REFERENCE, min(b.customer_ids))
    missing = await raw_error(app_conn, a.org_id, REFERENCE, uuid.uuid4())
    assert fields(theirs) == fields(missing)


async def test_foreign_key_detail_shows_no_key_values(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    error = await raw_error(app_conn, a.org_id, REFERENCE, min(b.customer_ids))
    assert isinstance(error, asyncpg.ForeignKeyViolationError)
    assert error.detail == 'Key is not present in table "customers".'


async def test_library_foreign_key_error_names_only_the_constraint(
    db: Database, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    with pytest.raises(ForeignKeyViolation) as raised:
        async with db.session(a.org_id) as session:
            session.add(PaymentMethod(customer_id=min(b.customer_ids), type="card"))
    assert raised.value.constraint == "fk_payment_methods_org_id_customer_id_customers"
    assert str(b.org_id) not in str(raised.value)
    assert str(min(b.customer_ids)) not in str(raised.value)


async def test_check_violation_shows_no_failing_row(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a = pair[0]
    error = await raw_error(app_conn, a.org_id, "UPDATE customers SET email = upper(email)")
    assert isinstance(error, asyncpg.CheckViolationError)
    assert error.detail is None


async def test_library_check_error_quotes_no_value(db: Database, org_a: uuid.UUID) -> None:
    with pytest.raises(InvalidData) as raised:
        async with db.session(org_a) as session:
            session.add(Customer(email="Mixed.Case@example.test"))
    assert "example.test" not in str(raised.value).lower()


async def test_unique_violation_shows_no_key(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a = pair[0]
    error = await raw_error(
        app_conn, a.org_id, "INSERT INTO customers (email) VALUES ($1)", min(a.emails)
    )
    assert isinstance(error, asyncpg.UniqueViolationError)
    assert error.detail is None


async def test_global_token_conflict_reveals_nothing_of_its_owner(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # A global key is an existence oracle by design (audit exemption); the error
    # tells the caller the address is taken, and nothing of by whom.
    a, b = pair
    error = await raw_error(
        app_conn,
        a.org_id,
        "INSERT INTO wallet_addresses (chain, address, wallet_id)"
        " VALUES ('ethereum', $1, gen_random_uuid())",
        b.wallet_address,
    )
    assert isinstance(error, asyncpg.UniqueViolationError)
    assert error.detail is None
    assert str(b.org_id) not in str(fields(error))


async def test_family_address_conflict_reveals_nothing_of_its_holder(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    # The holder row's key is the address on every chain of its family: taken, and
    # nothing said of which organization holds it.
    a, b = pair
    error = await raw_error(
        app_conn,
        a.org_id,
        "INSERT INTO wallet_address_holders (chain_family, address) VALUES ('evm', $1)",
        b.wallet_address,
    )
    assert isinstance(error, asyncpg.UniqueViolationError)
    assert error.detail is None
    assert str(b.org_id) not in str(fields(error))


async def test_library_global_token_conflict_names_only_the_constraint(db: Database) -> None:
    a, b = await seed_tenant(db, "a"), await seed_tenant(db, "b")
    with pytest.raises(Conflict) as raised:
        async with db.session(a.org_id) as session:
            await WalletRepository(session).add(Wallet(chain="ethereum", address=b.wallet_address))
    assert raised.value.constraint == "pk_wallet_addresses"
    assert b.wallet_address not in str(raised.value)


async def test_row_security_refusal_names_no_values(
    app_conn: asyncpg.Connection, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    error = await raw_error(
        app_conn, a.org_id, "INSERT INTO customers (org_id, email) VALUES ($1, 'x@y.z')", b.org_id
    )
    assert isinstance(error, asyncpg.InsufficientPrivilegeError)
    assert str(b.org_id) not in str(fields(error))


async def test_library_row_security_refusal_names_no_values(
    db: Database, pair: tuple[Seeded, Seeded]
) -> None:
    a, b = pair
    with pytest.raises(IsolationViolation) as raised:
        async with db.session(a.org_id) as session:
            session.add(Customer(org_id=b.org_id, email="x@example.test"))
    assert str(b.org_id) not in str(raised.value)
