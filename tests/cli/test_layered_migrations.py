"""The library's history is its own: a branch, its own version table, adopted from before.

The end-to-end layering of a service's revisions on it (alembic upgrade, check,
``tenancy migrate`` from the service's folder, one head) is tested by the
example service, ``examples/invoicing``, from the installed wheel.
"""

from __future__ import annotations

import asyncio

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from tenancy.schema.alembic_env import LIBRARY_BRANCH, LIBRARY_VERSION_TABLE
from tenancy.schema.migration import current, upgrade
from tenancy.schema.policy import policies_from_dir
from tenancy.schema.resources import migrations_dir, policies_dir
from tenancy.schema.tenant_table import (
    TENANT_PREDICATE,
    tenant_foreign_key,
    tenant_policies,
    tenant_table_statements,
)
from tests.cli.test_migrations import scalars


def test_every_library_revision_is_on_the_tenancy_branch_with_a_prefixed_id() -> None:
    script = ScriptDirectory(str(migrations_dir()))
    revisions = list(script.walk_revisions())

    assert all(r.revision.startswith(f"{LIBRARY_BRANCH}_") for r in revisions)
    assert script.get_revision(LIBRARY_BRANCH + "@head") is not None
    assert len(script.get_heads()) == 1


async def test_the_library_history_is_recorded_in_its_own_version_table(scratch_url: URL) -> None:
    recorded = await scalars(scratch_url, f"SELECT version_num FROM {LIBRARY_VERSION_TABLE}")
    default_table = await scalars(scratch_url, "SELECT to_regclass('public.alembic_version')")

    assert recorded == [ScriptDirectory(str(migrations_dir())).get_current_head()]
    assert default_table == [None]


async def test_a_database_migrated_before_the_split_is_adopted_and_stays_at_its_revision(
    scratch_url: URL,
) -> None:
    # What an earlier release left: the bare id (0010 for tenancy_0010) in alembic_version.
    head = ScriptDirectory(str(migrations_dir())).get_current_head()
    assert head is not None
    connection = await asyncpg.connect(
        scratch_url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await connection.execute(
            f"ALTER TABLE {LIBRARY_VERSION_TABLE} RENAME TO alembic_version; "
            f"ALTER TABLE alembic_version RENAME CONSTRAINT {LIBRARY_VERSION_TABLE}_pkc "
            "TO alembic_version_pkc; "
            f"UPDATE alembic_version SET version_num = '{head.removeprefix('tenancy_')}'"
        )
    finally:
        await connection.close()

    await asyncio.to_thread(upgrade, scratch_url)

    assert await asyncio.to_thread(current, scratch_url) == (head,)
    assert await scalars(scratch_url, "SELECT to_regclass('public.alembic_version')") == [None]


def test_the_service_policies_are_the_librarys_own_predicate() -> None:
    # The library's customers.sql and the rendered policies of a service's table
    # say the same thing: one predicate, permissive and restrictive.
    shipped = [p for p in policies_from_dir(policies_dir()) if "customers" in p.on_entity]
    rendered = tenant_policies("customers")

    assert sorted(p.signature for p in shipped) == sorted(p.signature for p in rendered)
    for policy in rendered:
        assert policy.definition.count(TENANT_PREDICATE) == 2


def test_a_tenant_foreign_key_leads_both_sides_with_org_id() -> None:
    key = tenant_foreign_key("invoice_id", "invoices")

    assert key.column_keys == ["org_id", "invoice_id"]
    assert [e.target_fullname for e in key.elements] == ["invoices.org_id", "invoices.id"]


def test_a_tenant_table_is_forced_under_rls_and_granted_to_the_app_role_only() -> None:
    statements = tenant_table_statements("invoices", "acme_app")

    assert statements == [
        'ALTER TABLE "public"."invoices" ENABLE ROW LEVEL SECURITY',
        'ALTER TABLE "public"."invoices" FORCE ROW LEVEL SECURITY',
        'GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."invoices" TO "acme_app"',
    ]
