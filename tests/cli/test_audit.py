"""The audit passes a freshly migrated database and names each kind of gap it is shown.

Tests break a database of this module's own inside a transaction that is rolled
back (``breakable``), and audit it on that same connection.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from repositories.models import TENANT_TABLES
from tenancy import TenancySettings
from tenancy.audit.database_audit import AuditReport, audit_connection, audit_database
from tenancy.audit.table_kind import TableKind
from tests.cli.databases import settings_for

pytestmark = pytest.mark.security

TENANT_PREDICATE = "org_id = nullif(current_setting('app.org_id', true), '')::uuid"


@pytest.fixture(scope="module")
def audited_settings(module_url: URL) -> TenancySettings:
    """Settings whose admin URL is this module's database."""
    return settings_for(module_url)


async def execute(connection: AsyncConnection, *statements: str) -> None:
    """Run ``statements`` in the test's transaction."""
    for statement in statements:
        await connection.exec_driver_sql(statement)


def problems(report: AuditReport, subject: str) -> list[str]:
    """Return the problems the report found for ``subject`` (a bare name: a table of public)."""
    if " " not in subject and "." not in subject:
        subject = f"public.{subject}"
    return [gap.problem for gap in report.gaps if gap.subject == subject]


async def test_a_freshly_migrated_database_has_no_gaps(audited_settings: TenancySettings) -> None:
    report = await audit_database(audited_settings)

    assert report.gaps == ()
    assert report.ok


async def test_the_owner_role_can_run_the_audit(module_url: URL) -> None:
    owner = module_url.set(username="tenancy_owner", password="tenancy_owner")

    report = await audit_database(settings_for(owner))

    assert report.ok


async def test_a_database_without_tenant_tables_is_a_gap(empty_url: URL) -> None:
    report = await audit_database(settings_for(empty_url))

    assert [(g.subject, g.code) for g in report.gaps] == [("database", "nothing-checked")]
    assert report.checked_nothing


async def test_every_table_except_alembic_version_is_audited(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    names = {table.name for table in report.tables}
    assert {"organizations", "users", *TENANT_TABLES} <= names
    assert "alembic_version" not in names


async def test_every_tenant_table_is_forced_guarded_and_bare(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    tenant_tables = [t for t in report.tables if t.name in TENANT_TABLES]
    assert len(tenant_tables) == len(TENANT_TABLES)
    for table in tenant_tables:
        assert table.kind is TableKind.TENANT
        assert (table.rls_enabled, table.rls_forced, table.predicate) == (True, True, "bare")
        assert all(c.guarded for c in table.coverage), table.name


async def test_users_are_reported_as_global_with_membership_policies(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    users = next(t for t in report.tables if t.name == "users")
    assert users.kind is TableKind.GLOBAL
    assert {a.policy.name for a in users.policies} >= {"member_read", "member_guard"}
    assert problems(report, "users") == []


async def test_global_token_keys_are_allowed_without_org_id(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    checked = {t.name: t.unique_keys_ok for t in report.tables}
    assert checked["payment_links"] is True
    assert checked["wallets"] is True


async def test_chain_bookkeeping_tables_are_reported_as_shared(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    kinds = {t.name: t.kind for t in report.tables}
    assert kinds["chain_checkpoints"] is TableKind.SHARED
    assert kinds["chain_blocks"] is TableKind.SHARED


async def test_the_app_role_is_reported_safe(audited_settings: TenancySettings) -> None:
    report = await audit_database(audited_settings)

    role = report.app_role
    assert role is not None
    assert (role.superuser, role.bypassrls, role.privileged_member, role.owned_objects) == (
        False,
        False,
        False,
        0,
    )


async def test_the_chain_role_is_reported_safe_and_kept_to_the_chain(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    role = report.chain_role
    assert role is not None
    assert (role.superuser, role.bypassrls, role.privileged_member, role.owned_objects) == (
        False,
        False,
        False,
        0,
    )
    assert role.tables == ("chain_blocks", "chain_checkpoints")
    assert role.definers == ("resolve_wallet", "unsettled_wallet_tenants")


async def test_the_app_role_cannot_list_a_chains_tenants(
    audited_settings: TenancySettings,
) -> None:
    report = await audit_database(audited_settings)

    assert report.app_role is not None
    assert "unsettled_wallet_tenants" not in report.app_role.definers
    assert "resolve_wallet" not in report.app_role.definers


async def test_removing_force_from_one_table_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(breakable, "ALTER TABLE customers NO FORCE ROW LEVEL SECURITY")

    report = await audit_connection(breakable)

    assert not report.ok
    assert problems(report, "customers") == [
        "row-level security is not forced (the table owner bypasses it)"
    ]


async def test_disabling_rls_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(breakable, "ALTER TABLE agents DISABLE ROW LEVEL SECURITY")

    report = await audit_connection(breakable)

    assert "row-level security is not enabled" in problems(report, "agents")


async def test_a_permissive_using_true_policy_is_a_gap(breakable: AsyncConnection) -> None:
    # The restrictive guard still holds, so this leaks nothing today; it is a gap
    # because it is one dropped guard away from opening the table.
    await execute(
        breakable,
        "CREATE POLICY open_read ON products AS PERMISSIVE FOR SELECT USING (true)",
    )

    report = await audit_connection(breakable)

    assert not report.ok
    [problem] = problems(report, "products")
    assert "permissive policy 'open_read' (SELECT) is not the tenant predicate" in problem


async def test_dropping_the_restrictive_guard_is_a_gap_for_every_command(
    breakable: AsyncConnection,
) -> None:
    await execute(breakable, "DROP POLICY tenant_guard ON prices")

    report = await audit_connection(breakable)

    assert problems(report, "prices") == [
        f"no RESTRICTIVE guard for {command}: a permissive policy could widen it"
        for command in ("SELECT", "INSERT", "UPDATE", "DELETE")
    ]


async def test_a_guard_for_some_commands_only_is_a_gap_for_the_others(
    breakable: AsyncConnection,
) -> None:
    await execute(
        breakable,
        "DROP POLICY tenant_guard ON wallets",
        "CREATE POLICY tenant_guard ON wallets AS RESTRICTIVE FOR SELECT "
        f"USING ({TENANT_PREDICATE})",
    )

    report = await audit_connection(breakable)

    assert problems(report, "wallets") == [
        f"no RESTRICTIVE guard for {command}: a permissive policy could widen it"
        for command in ("INSERT", "UPDATE", "DELETE")
    ]


async def test_a_wrapped_tenant_predicate_still_guards_without_a_gap(
    breakable: AsyncConnection,
) -> None:
    wrapped = "org_id = (SELECT nullif(current_setting('app.org_id', true), '')::uuid)"
    await execute(
        breakable,
        "DROP POLICY tenant_isolation ON agents",
        "DROP POLICY tenant_guard ON agents",
        f"CREATE POLICY tenant_isolation ON agents USING ({wrapped}) WITH CHECK ({wrapped})",
        f"CREATE POLICY tenant_guard ON agents AS RESTRICTIVE USING ({wrapped})"
        f" WITH CHECK ({wrapped})",
    )

    report = await audit_connection(breakable)

    agents = next(t for t in report.tables if t.name == "agents")
    assert agents.predicate == "wrapped"
    assert problems(report, "agents") == []


async def test_a_unique_key_without_org_id_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(breakable, "CREATE UNIQUE INDEX uq_leaky_email ON customers (email)")

    report = await audit_connection(breakable)

    [problem] = problems(report, "customers")
    assert problem.startswith("unique key 'uq_leaky_email' (email) leaves out org_id")


async def test_an_allowed_token_name_on_other_columns_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(
        breakable,
        "ALTER TABLE wallet_addresses DROP CONSTRAINT pk_wallet_addresses",
        "ALTER TABLE wallet_addresses ADD CONSTRAINT pk_wallet_addresses UNIQUE (wallet_id)",
    )

    report = await audit_connection(breakable)

    expected = "unique key 'pk_wallet_addresses' (wallet_id) leaves out org_id"
    assert [p for p in problems(report, "wallet_addresses") if p.startswith(expected)]


async def test_a_foreign_key_to_a_tenant_table_without_org_id_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    # A single-column key lets a row point at another tenant's customer (FK checks bypass RLS).
    await execute(
        breakable,
        "CREATE UNIQUE INDEX uq_customers_id_only ON customers (id)",
        "ALTER TABLE payment_methods ADD CONSTRAINT fk_single FOREIGN KEY (customer_id) "
        "REFERENCES customers (id)",
    )

    report = await audit_connection(breakable)

    [problem] = problems(report, "payment_methods")
    assert problem.startswith("foreign key 'fk_single' (customer_id) -> customers(id)")


async def test_a_table_neither_tenant_owned_nor_declared_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    await execute(breakable, "CREATE TABLE notes (id uuid PRIMARY KEY, body text)")

    report = await audit_connection(breakable)

    assert problems(report, "notes") == ["has no org_id and is declared neither global nor shared"]


async def test_a_tenant_table_without_an_org_id_led_index_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    await execute(
        breakable,
        "CREATE TABLE notes (org_id uuid NOT NULL, id uuid NOT NULL, "
        "CONSTRAINT pk_notes PRIMARY KEY (id, org_id))",
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE notes FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_guard ON notes AS RESTRICTIVE USING ({TENANT_PREDICATE})",
    )

    report = await audit_connection(breakable)

    assert problems(report, "notes") == ["no index leads with org_id"]


async def test_a_shared_table_referencing_tenant_rows_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(
        breakable,
        "ALTER TABLE chain_checkpoints ADD COLUMN owner uuid "
        "CONSTRAINT fk_checkpoint_owner REFERENCES organizations (id)",
    )

    report = await audit_connection(breakable)

    assert problems(report, "chain_checkpoints") == [
        "shared table references tenant table organizations ('fk_checkpoint_owner')"
    ]


async def test_a_view_without_security_invoker_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(breakable, "CREATE VIEW all_customers AS SELECT * FROM customers")

    report = await audit_connection(breakable)

    assert problems(report, "view public.all_customers") == [
        "lacks security_invoker, so it reads as its owner"
    ]


async def test_a_security_invoker_view_is_not_a_gap(breakable: AsyncConnection) -> None:
    await execute(
        breakable,
        "CREATE VIEW my_customers WITH (security_invoker = on) AS SELECT * FROM customers",
    )

    report = await audit_connection(breakable)

    assert report.ok
    assert [(v.name, v.security_invoker) for v in report.views] == [("my_customers", True)]


async def test_a_security_definer_function_without_search_path_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    await execute(
        breakable,
        "CREATE FUNCTION count_customers() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
        "AS 'SELECT count(*) FROM public.customers'",
    )
    # Not executable by the app role: this test is about search_path alone.
    await execute(breakable, "REVOKE EXECUTE ON FUNCTION count_customers() FROM PUBLIC")

    report = await audit_connection(breakable)

    assert problems(report, "function public.count_customers()") == [
        "is SECURITY DEFINER without a fixed search_path"
    ]


async def test_a_search_path_with_pg_temp_first_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(
        breakable,
        "CREATE FUNCTION count_customers() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
        "SET search_path = pg_temp, pg_catalog AS 'SELECT count(*) FROM public.customers'",
    )
    # Not executable by the app role: this test is about search_path alone.
    await execute(breakable, "REVOKE EXECUTE ON FUNCTION count_customers() FROM PUBLIC")

    report = await audit_connection(breakable)

    assert problems(report, "function public.count_customers()") == [
        "search_path must end with pg_temp, else temp objects win"
    ]


async def test_a_relay_role_reaching_beyond_the_outbox_is_a_gap(breakable: AsyncConnection) -> None:
    await execute(breakable, "GRANT SELECT ON customers TO tenancy_relay")

    report = await audit_connection(breakable)

    assert problems(report, "role tenancy_relay") == [
        "bypasses RLS and has privileges on customers"
    ]


async def test_an_app_role_that_can_list_a_chains_tenants_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    await execute(
        breakable,
        "GRANT EXECUTE ON FUNCTION unsettled_wallet_tenants(text, bigint) TO tenancy_app",
    )

    report = await audit_connection(breakable)

    assert problems(report, "role tenancy_app") == [
        "can execute unsettled_wallet_tenants, which lists every tenant with transactions "
        "on a chain"
    ]


async def test_a_chain_role_reaching_beyond_the_chain_tables_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    await execute(breakable, "GRANT SELECT ON customers TO tenancy_chain")

    report = await audit_connection(breakable)

    assert problems(report, "role tenancy_chain") == [
        "has privileges beyond the chain tables, on customers"
    ]


async def test_a_chain_role_running_another_definer_function_is_a_gap(
    breakable: AsyncConnection,
) -> None:
    await execute(breakable, "GRANT EXECUTE ON FUNCTION resolve_login(text) TO tenancy_chain")

    report = await audit_connection(breakable)

    assert problems(report, "role tenancy_chain") == [
        "can execute definer functions beyond the chain resolvers: resolve_login"
    ]


async def test_a_chain_role_with_bypassrls_is_a_gap(breakable: AsyncConnection) -> None:
    # Rolled back with the test's transaction; other sessions never see it.
    await execute(breakable, "ALTER ROLE tenancy_chain BYPASSRLS")

    report = await audit_connection(breakable)

    assert problems(report, "role tenancy_chain") == ["has BYPASSRLS"]


@pytest.fixture
async def stand_in_role(breakable: AsyncConnection) -> str:
    """A login role audited in place of the app role; it vanishes with the rollback."""
    name = f"tenancy_audit_{uuid.uuid4().hex[:10]}"
    await execute(breakable, f'CREATE ROLE "{name}" LOGIN NOBYPASSRLS')
    return name


async def test_an_app_role_with_bypassrls_is_a_gap(
    breakable: AsyncConnection, stand_in_role: str
) -> None:
    await execute(breakable, f'ALTER ROLE "{stand_in_role}" BYPASSRLS')

    report = await audit_connection(breakable, app_role=stand_in_role)

    assert problems(report, f"role {stand_in_role}") == ["has BYPASSRLS"]


async def test_an_app_role_inheriting_bypassrls_is_a_gap(
    breakable: AsyncConnection, stand_in_role: str
) -> None:
    await execute(breakable, f'GRANT tenancy_relay TO "{stand_in_role}"')

    report = await audit_connection(breakable, app_role=stand_in_role)

    assert problems(report, f"role {stand_in_role}") == [
        "is a member of a superuser or BYPASSRLS role"
    ]


async def test_an_app_role_owning_objects_is_a_gap(
    breakable: AsyncConnection, stand_in_role: str
) -> None:
    await execute(
        breakable,
        "CREATE TABLE owned_by_app (id int)",
        f'ALTER TABLE owned_by_app OWNER TO "{stand_in_role}"',
    )

    report = await audit_connection(breakable, app_role=stand_in_role)

    assert problems(report, f"role {stand_in_role}") == ["owns 1 object(s); it must own nothing"]


async def test_a_missing_app_role_is_a_gap(audited_settings: TenancySettings) -> None:
    report = await audit_database(audited_settings, app_role="tenancy_no_such_role")

    assert problems(report, "role tenancy_no_such_role") == ["does not exist"]
