"""``seed`` fills every tenant table through the library, deterministically and idempotently.

Counts are taken as the app role inside each tenant (what the tenant can see);
the row-for-row comparisons read as superuser, who sees every tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select, table
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from repositories import PlatformDatabase
from repositories.demo.seed import SeededOrganization, organization_id, seed, seed_database
from repositories.models import (
    TENANT_TABLES,
    Base,
    Membership,
    PaymentMethod,
    PaymentOrder,
    Price,
    User,
)
from repositories.models.enums import PaymentOrderStatus
from tenancy import Database, InvalidData, TenancySettings, UnsafeDatabaseRole
from tests.cli.databases import janitor, new_name, settings_for

EVERY_TABLE = ("organizations", "users", *TENANT_TABLES)


@pytest.fixture(scope="module")
async def module_db(module_url: URL) -> AsyncIterator[Database]:
    """The app-role ``Database`` of this module's database."""
    database = await PlatformDatabase.connect(settings_for(module_url))
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def seeded(module_db: Database) -> list[SeededOrganization]:
    """Two organizations seeded once for the whole module."""
    return await seed(module_db, 2)


async def visible_rows(db: Database, org_id: uuid.UUID) -> dict[str, int]:
    """Count, per table, the rows tenant ``org_id`` sees."""
    async with db.session(org_id) as session:
        return {
            name: (
                await session.execute(select(func.count()).select_from(table(name)))
            ).scalar_one()
            for name in EVERY_TABLE
        }


async def dump(url: URL) -> dict[str, Sequence[Any]]:
    """Return every row of every seeded table, ordered by primary key, as superuser."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = {}
            for name in EVERY_TABLE:
                mapped = Base.metadata.tables[name]
                query = select(mapped).order_by(*mapped.primary_key.columns)
                rows[name] = (await connection.execute(query)).all()
            return rows
    finally:
        await engine.dispose()


async def test_seed_fills_every_tenant_table_for_each_organization(
    module_db: Database, seeded: list[SeededOrganization]
) -> None:
    assert [s.org_id for s in seeded] == [organization_id(0), organization_id(1)]
    for organization in seeded:
        counts = await visible_rows(module_db, organization.org_id)
        # The one invitation is accepted, and accepting deletes its token's lookup row.
        empty = [n for n, count in counts.items() if count == 0 and n != "invitation_tokens"]
        assert empty == [], f"{organization.name} has no rows in {empty}"
        assert counts["organizations"] == 1


async def test_seed_reports_what_each_tenant_sees(
    module_db: Database, seeded: list[SeededOrganization]
) -> None:
    for organization in seeded:
        assert organization.created
        assert organization.rows == await visible_rows(module_db, organization.org_id)


async def test_each_seeded_customer_has_exactly_one_default_payment_method(
    module_db: Database, seeded: list[SeededOrganization]
) -> None:
    async with module_db.session(seeded[0].org_id) as session:
        defaults = (
            await session.execute(
                select(PaymentMethod.customer_id, func.count())
                .where(PaymentMethod.is_default)
                .group_by(PaymentMethod.customer_id)
            )
        ).all()
    assert len(defaults) == seeded[0].rows["customers"]
    assert {count for _, count in defaults} == {1}


async def test_each_active_seeded_price_replaced_an_inactive_one(
    module_db: Database, seeded: list[SeededOrganization]
) -> None:
    async with module_db.session(seeded[0].org_id) as session:
        prices = (await session.execute(select(Price))).scalars().all()
    active = [p for p in prices if p.active]
    history = {(p.product_id, p.currency) for p in prices if not p.active and p.deactivated_at}
    assert active
    assert {(p.product_id, p.currency) for p in active} == history


async def test_seeded_payment_orders_go_through_every_status(
    module_db: Database, seeded: list[SeededOrganization]
) -> None:
    async with module_db.session(seeded[1].org_id) as session:
        statuses = set((await session.execute(select(PaymentOrder.status))).scalars())
    assert statuses == {s.value for s in PaymentOrderStatus}


async def test_the_first_owner_is_also_a_member_of_the_second_organization(
    module_db: Database, seeded: list[SeededOrganization]
) -> None:
    async with module_db.session(seeded[0].org_id) as session:
        owner_id = (
            await session.execute(select(Membership.user_id).where(Membership.role == "owner"))
        ).scalar_one()
    async with module_db.session(seeded[1].org_id) as session:
        guest = await session.get(User, owner_id)
        role = (
            await session.execute(select(Membership.role).where(Membership.user_id == owner_id))
        ).scalar_one()
    assert guest is not None
    assert role == "viewer"


async def test_seeding_again_reports_existing_organizations_and_changes_nothing(
    module_db: Database, module_url: URL, seeded: list[SeededOrganization]
) -> None:
    before = await dump(module_url)

    again = await seed(module_db, 2)

    assert [s.created for s in again] == [False, False]
    assert await dump(module_url) == before


async def test_seeding_more_organizations_adds_only_the_new_ones(scratch_db: Database) -> None:
    await seed(scratch_db, 1)

    results = await seed(scratch_db, 2)

    assert [s.created for s in results] == [False, True]


async def test_seed_writes_the_same_rows_into_any_database(
    admin_url: URL, migrated_template: str, module_url: URL, seeded: list[SeededOrganization]
) -> None:
    name = new_name("seed_twin")
    with janitor(admin_url, name, template=migrated_template):
        twin_url = admin_url.set(database=name)
        await seed_database(settings_for(twin_url), 2)

        assert await dump(twin_url) == await dump(module_url)


async def test_seed_needs_at_least_one_organization(module_db: Database) -> None:
    with pytest.raises(InvalidData):
        await seed(module_db, 0)


async def test_seed_refuses_to_write_as_a_role_that_bypasses_rls(module_url: URL) -> None:
    superuser = module_url.render_as_string(hide_password=False)
    settings = TenancySettings(admin_database_url=superuser, database_url=superuser)

    with pytest.raises(UnsafeDatabaseRole):
        await seed_database(settings, 1)
