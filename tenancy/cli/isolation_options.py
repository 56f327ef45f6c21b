"""The options ``tenancy audit`` and ``tenancy security-check`` share, read into one
``IsolationConfig``: ``[tool.tenancy]`` of ``./pyproject.toml`` first, then the options.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tenancy.audit.isolation_config import TENANT_TYPES, IsolationConfig, load_config
from tenancy.errors import ConfigurationError
from tenancy.schema.role_names import APP_ROLE


def add_isolation_options(parser: argparse.ArgumentParser) -> None:
    """Add the schema, role, tenant column and binding options."""
    parser.add_argument(
        "--schema",
        action="append",
        default=[],
        dest="schemas",
        metavar="SCHEMA",
        help="a schema to check (repeatable; default: every non-system schema)",
    )
    parser.add_argument(
        "--app-role",
        default=None,
        help=f"the role the application connects as (default: $TENANCY_APP_ROLE, else {APP_ROLE})",
    )
    parser.add_argument(
        "--tenant-column", default=None, help="the column holding the tenant (default: org_id)"
    )
    parser.add_argument(
        "--table-tenant-column",
        action="append",
        default=[],
        metavar="TABLE=COLUMN",
        help="the tenant column of one table, where it differs (repeatable)",
    )
    parser.add_argument("--tenant-type", choices=TENANT_TYPES, default=None)
    binding = parser.add_mutually_exclusive_group()
    binding.add_argument(
        "--tenant-setting",
        default=None,
        help="the setting the policies read the tenant from (default: app.org_id)",
    )
    binding.add_argument(
        "--tenant-binding",
        default=None,
        metavar="SQL",
        help="SQL that binds a tenant, with {tenant} for its quoted value, e.g. "
        '"SET LOCAL ROLE tenant_{tenant}" (instead of --tenant-setting)',
    )
    parser.add_argument(
        "--membership",
        default=None,
        metavar="SCHEMA.TABLE(USER,TENANT)",
        help="membership-based schemes: the binding names a user, member of tenants here",
    )
    for flag, dest, text in (
        ("--global-table", "global_tables", "a table without tenant rows by design"),
        ("--random-key", "random_keys", "TABLE.COLUMN holding random global tokens"),
        ("--reviewed-definer", "reviewed_definers", "a definer function reviewed as safe"),
    ):
        parser.add_argument(
            flag, action="append", default=[], dest=dest, help=f"{text} (repeatable)"
        )


def isolation_config(args: argparse.Namespace, directory: Path | None = None) -> IsolationConfig:
    """Return ``[tool.tenancy]`` of ``directory``'s ``pyproject.toml`` overridden by ``args``.

    Raises:
        ConfigurationError: a malformed ``TABLE=COLUMN`` or ``[tool.tenancy]`` entry.
    """
    base = load_config(directory)
    overrides = dict(base.tenant_columns)
    for pair in args.table_tenant_column:
        table, sep, column = pair.partition("=")
        if not sep or not table or not column:
            raise ConfigurationError(f"--table-tenant-column wants TABLE=COLUMN, got {pair!r}")
        overrides[table] = column
    app_role = args.app_role
    if app_role is None and base.app_role == APP_ROLE:
        app_role = os.environ.get("TENANCY_APP_ROLE") or None
    return base.with_options(
        schemas=args.schemas,
        app_role=app_role,
        tenant_column=args.tenant_column,
        tenant_columns=overrides,
        tenant_type=args.tenant_type,
        tenant_setting=args.tenant_setting,
        tenant_binding=args.tenant_binding,
        global_tables=args.global_tables,
        random_keys=args.random_keys,
        reviewed_definers=args.reviewed_definers,
        membership=args.membership,
    )
