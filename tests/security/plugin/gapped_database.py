"""Throwaway databases, the gaps made in one of them, and how to load the plugin."""

from __future__ import annotations

import psycopg
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

PLUGIN = "tenancy.testing.plugin"

#: The gaps made in the broken database, by statement, and the checks each must trip.
BREAKS = (
    "ALTER TABLE customers NO FORCE ROW LEVEL SECURITY",
    "CREATE UNIQUE INDEX uq_customers_email_global ON customers (email)",
    "ALTER TABLE products DISABLE ROW LEVEL SECURITY",
    "DROP POLICY tenant_guard ON prices",
    "CREATE POLICY sec_open ON prices AS PERMISSIVE FOR SELECT TO PUBLIC USING (true)",
    # Harmless while the restrictive guard stands: the checks must not flag it.
    "CREATE POLICY sec_open ON agents AS PERMISSIVE FOR SELECT TO PUBLIC USING (true)",
)
EXPECTED_GAPS = frozenset(
    {
        "public.customers::rls_forced",
        "public.customers::unique_includes_tenant",
        "public.products::rls_enabled",
        "public.products::cross_tenant_select",
        "public.products::fail_closed",
        "public.products::cross_tenant_update",
        "public.products::cross_tenant_delete",
        "public.products::foreign_insert",
        "public.products::move_to_other_tenant",
        "public.prices::restrictive_guard",
        # Policy content: prices' open policy is unguarded, and products has no RLS
        # while the app role may write it.
        "public.prices::permissive_is_tenant_only",
        "public.products::app_dml_without_rls",
        "public.prices::cross_tenant_select",
        "public.prices::fail_closed",
    }
)


def janitor(server: URL, name: str, template: str | None = None) -> DatabaseJanitor:
    """Return a janitor for database ``name`` on ``server`` (a clone of ``template``)."""
    return DatabaseJanitor(
        user=server.username or "postgres",
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        dbname=name,
        template_dbname=template,
    )


def execute(url: URL, *statements: str) -> None:
    """Run ``statements`` as the superuser of ``url``, committed (setup only)."""
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as connection:
        for statement in statements:
            connection.execute(statement.encode())


def plugin_args(*args: str | URL) -> list[str]:
    """Return ``args`` (URLs rendered) after the ``-p`` that loads the plugin.

    The inner runs disable plugin autoloading (a bare service project with only
    this plugin), so ``-p`` is needed whether or not the entry point is installed.
    """
    rendered = [a.render_as_string(hide_password=False) if isinstance(a, URL) else a for a in args]
    return ["-p", PLUGIN, *rendered]
