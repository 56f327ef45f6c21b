"""The behavioural probe on schemas that are not this project's: typed, unique, and
plain about why it could not run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.testing.result import ISOLATION, CheckOptions, CheckResult
from tenancy.testing.runner import check_database, run_sync
from tests.security.plugin.foreign_schemas import GUARD, Roles, pool, tenant_table
from tests.security.plugin.gapped_database import execute, janitor

pytestmark = pytest.mark.security


def lab(roles: Roles) -> list[str]:
    """Return the pool schema and tables that trip a naive probe."""
    return [
        *pool(roles),
        # A unique integer besides the tenant's: constant values would collide (23505).
        *tenant_table(
            "tickets",
            roles,
            "tenant_id integer NOT NULL, id integer NOT NULL, seat integer NOT NULL UNIQUE, "
            "PRIMARY KEY (tenant_id, id)",
        ),
        # Only one region has a partition: a made-up region would route nowhere (23514).
        # No RLS at all: once a row routes, the probe finds the gap itself.
        "CREATE TABLE shop.visits (tenant_id integer NOT NULL, region text NOT NULL) "
        "PARTITION BY LIST (region)",
        "CREATE TABLE shop.visits_eu PARTITION OF shop.visits FOR VALUES IN ('eu')",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON shop.visits TO {roles.app}",
        # Months of 2030 only, under RLS: a made-up date (2000) would route nowhere.
        *tenant_table(
            "readings",
            roles,
            "tenant_id integer NOT NULL, day date NOT NULL DEFAULT current_date, "
            "PRIMARY KEY (tenant_id, day)) PARTITION BY RANGE (day",
        ),
        *partition("readings", "readings_2030_01", "FROM ('2030-01-01') TO ('2030-02-01')", roles),
        # One partition per group of tenants: made-up tenants would route nowhere.
        *tenant_table(
            "ledgers",
            roles,
            "tenant_id integer NOT NULL, entry integer NOT NULL, "
            "PRIMARY KEY (tenant_id, entry)) PARTITION BY LIST (tenant_id",
        ),
        *partition("ledgers", "ledgers_a", "IN (11, 12)", roles),
        *partition("ledgers", "ledgers_b", "IN (13)", roles),
    ]


def partition(parent: str, name: str, bound: str, roles: Roles) -> list[str]:
    """Return DDL for a partition of ``shop.<parent>`` under the same RLS as its parent."""
    return [
        f"CREATE TABLE shop.{name} PARTITION OF shop.{parent} FOR VALUES {bound}",
        f"ALTER TABLE shop.{name} OWNER TO {roles.owner}",
        f"ALTER TABLE shop.{name} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE shop.{name} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_read ON shop.{name} USING (tenant_id = {GUARD})",
        f"CREATE POLICY tenant_guard ON shop.{name} AS RESTRICTIVE "
        f"USING (tenant_id = {GUARD}) WITH CHECK (tenant_id = {GUARD})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON shop.{name} TO {roles.app}",
    ]


@pytest.fixture(scope="module")
def results(admin_url: URL) -> Iterator[dict[str, CheckResult]]:
    """The isolation results on the lab schema, by ``subject::check``."""
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(app=f"lab_app_{suffix}", owner=f"lab_owner_{suffix}")
    name = f"tenancy_probe_{suffix}"
    execute(admin_url, *roles.create())
    try:
        with janitor(admin_url, name):
            url = admin_url.set(database=name)
            execute(url, *lab(roles))
            config = IsolationConfig(
                schemas=("shop",),
                app_role=roles.app,
                tenant_column="tenant_id",
                tenant_setting="app.current_tenant",
                random_keys=frozenset({"shop.invites.token", "shop.tickets.seat"}),
            )
            found = run_sync(check_database(url, CheckOptions(config=config)))
            yield {r.case_id: r for r in found if r.category == ISOLATION}
    finally:
        execute(admin_url, *roles.drop())


def test_integer_tenant_keys_are_probed_with_integers(results: dict[str, CheckResult]) -> None:
    orders = {k: r for k, r in results.items() if k.startswith("shop.orders::")}
    assert len(orders) == 6
    assert all(r.passed for r in orders.values()), orders


def test_a_policy_that_errors_without_a_tenant_counts_as_fail_closed(
    results: dict[str, CheckResult],
) -> None:
    closed = results["shop.orders::fail_closed"]
    assert closed.passed
    assert closed.detail.startswith("refused with no tenant:")


def test_a_unique_integer_column_gets_a_fresh_value_per_row(
    results: dict[str, CheckResult],
) -> None:
    tickets = [r for k, r in results.items() if k.startswith("shop.tickets::")]
    assert tickets
    assert all(r.passed for r in tickets), tickets


def test_a_list_partition_key_gets_a_value_its_partitions_accept(
    results: dict[str, CheckResult],
) -> None:
    # The row routes to visits_eu, so the probe runs and finds the table's real gap.
    visits = results["shop.visits::cross_tenant_select"]
    assert not visits.passed
    assert not visits.detail.startswith("probe could not run")


@pytest.mark.parametrize("table", ["readings", "ledgers"])
def test_a_partitioned_tenant_table_is_probed_with_values_its_partitions_accept(
    results: dict[str, CheckResult], table: str
) -> None:
    found = {k: r for k, r in results.items() if k.startswith(f"shop.{table}::")}
    assert len(found) == 6
    assert all(r.passed for r in found.values()), found
