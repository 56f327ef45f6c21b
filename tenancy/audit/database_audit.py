"""Audit a live database for the gaps that would let one tenant see another's rows.

The audit reads ``pg_catalog`` (``tenancy.audit.pg_catalog``), judges every table of the
schema (``tenancy.audit.table_judgement``), and checks what sits around the tables: the
application role (no superuser, no BYPASSRLS, owns nothing, cannot list a chain's
tenants), the relay role (bypasses RLS, so its grants must stop at the outbox),
the chain-jobs role (like the app role, and its grants stop at the chain tables
and the two chain resolvers), views (must be ``security_invoker``) and
``SECURITY DEFINER`` functions (must pin ``search_path``).
Any finding is a ``Gap``; ``AuditReport.ok`` is false then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.audit.pg_catalog import (
    DefinerFunction,
    Role,
    View,
    read_definer_functions,
    read_foreign_keys,
    read_indexes,
    read_policies,
    read_role,
    read_tables,
    read_views,
    render_predicates,
)
from tenancy.audit.table_judgement import (
    TENANT_COLUMN,
    Gap,
    TableAudit,
    TableKind,
    TableRules,
    audit_table,
    table_kind,
)
from tenancy.db.engine import create_engine, rls_bypass_problems
from tenancy.errors import raise_translated
from tenancy.schema.role_names import RoleNames
from tenancy.settings import TenancySettings

IGNORED_TABLES = frozenset({"alembic_version", "tenancy_alembic_version"})
#: The only table the relay role (BYPASSRLS) may touch.
RELAY_TABLES = ("outbox_events",)
#: All the chain-jobs role may touch: the chain tables and the definer functions
#: that map a chain's addresses and unsettled transactions to tenant ids.
CHAIN_TABLES = ("chain_blocks", "chain_checkpoints")
CHAIN_FUNCTIONS = ("resolve_wallet", "unsettled_wallet_tenants")
#: Definer functions that name other tenants (those of a whole chain, the holder of
#: an address): never for the app role, whose every request is one tenant's.
CHAIN_ONLY_FUNCTIONS = ("resolve_wallet", "unsettled_wallet_tenants")


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit found; ``ok`` when there is no gap."""

    tables: tuple[TableAudit, ...]
    app_role: Role | None
    relay_role: Role | None
    chain_role: Role | None
    views: tuple[View, ...]
    definer_functions: tuple[DefinerFunction, ...]
    gaps: tuple[Gap, ...]

    @property
    def ok(self) -> bool:
        """Return whether the database passed every check."""
        return not self.gaps


async def audit_database(
    settings: TenancySettings, *, app_role: str | None = None, schema: str = "public"
) -> AuditReport:
    """Inspect the database at ``settings.admin_url()`` (owner or superuser) and judge it.

    The connecting role needs CREATE on ``schema`` for the rolled-back predicate probe.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    engine = create_engine(settings, url=settings.admin_url())
    try:
        async with engine.connect() as connection:
            roles = settings.role_names()
            report = await audit_connection(
                connection, app_role=app_role or roles.app, schema=schema, roles=roles
            )
            await connection.rollback()
    except Exception as exc:
        raise_translated(exc)
        raise
    finally:
        await engine.dispose()
    return report


async def audit_connection(
    connection: AsyncConnection,
    *,
    app_role: str | None = None,
    schema: str = "public",
    roles: RoleNames | None = None,
) -> AuditReport:
    """Judge the database as ``connection`` sees it, inside its current transaction.

    ``roles`` names the deployment's roles (default: the ``tenancy_*`` names);
    ``app_role`` overrides the app role's name alone.

    Writes nothing that outlives a savepoint; the caller owns the transaction.
    """
    roles = roles or RoleNames()
    app_role = app_role or roles.app
    predicates = await render_predicates(connection, schema, (TENANT_COLUMN, "id"))
    tables = [t for t in await read_tables(connection, schema) if t.name not in IGNORED_TABLES]
    policies = await read_policies(connection, schema)
    rules = TableRules(
        predicates,
        app_role,
        tuple(await read_indexes(connection, schema)),
        tuple(await read_foreign_keys(connection, schema)),
        frozenset(t.name for t in tables if table_kind(t) in (TableKind.TENANT, TableKind.ROOT)),
    )
    app = await read_role(connection, app_role, schema)
    relay = await read_role(connection, roles.relay, schema)
    chain = await read_role(connection, roles.chain, schema)
    views = await read_views(connection)
    functions = await read_definer_functions(connection)
    audited = tuple(
        audit_table(t, tuple(p for p in policies if p.table == t.name), rules) for t in tables
    )
    gaps = [
        # An unmigrated database has nothing to leak yet, but must not pass a CI gate.
        *([] if rules.tenant_tables else [Gap(f"schema {schema}", "has no tenant tables")]),
        *(gap for table in audited for gap in table.gaps),
        *_app_role_gaps(app, app_role),
        *_relay_role_gaps(relay),
        *_chain_role_gaps(chain),
        *_view_gaps(views),
        *_function_gaps(functions),
    ]
    return AuditReport(audited, app, relay, chain, tuple(views), tuple(functions), tuple(gaps))


def _app_role_gaps(role: Role | None, name: str) -> list[Gap]:
    if role is None:
        return [Gap(f"role {name}", "does not exist")]
    problems = _rls_problems(role)
    problems.extend(
        f"can execute {function}, which lists every tenant with transactions on a chain"
        for function in role.definers
        if function in CHAIN_ONLY_FUNCTIONS
    )
    return [Gap(f"role {name}", p) for p in problems]


def _rls_problems(role: Role) -> list[str]:
    # What makes row-level security apply to a role at all.
    return rls_bypass_problems(
        superuser=role.superuser,
        bypassrls=role.bypassrls,
        privileged_member=role.privileged_member,
        owned=role.owned_objects,
    )


def _relay_role_gaps(role: Role | None) -> list[Gap]:
    # An absent relay role can leak nothing; a present one bypasses RLS by design,
    # so its privileges are the only thing keeping it to the outbox.
    if role is None:
        return []
    problems = []
    if role.superuser:
        problems.append("is a superuser")
    extra = [t for t in role.tables if t not in RELAY_TABLES]
    if extra:
        problems.append(f"bypasses RLS and has privileges on {', '.join(extra)}")
    return [Gap(f"role {role.name}", p) for p in problems]


def _chain_role_gaps(role: Role | None) -> list[Gap]:
    # An absent chain role can leak nothing (the chain jobs cannot run). A present
    # one sees no tenant rows only while RLS applies to it and its grants stay narrow;
    # a definer function runs with its owner's rights, so each one it may run counts.
    if role is None:
        return []
    problems = _rls_problems(role)
    extra_tables = [t for t in role.tables if t not in CHAIN_TABLES]
    if extra_tables:
        problems.append(f"has privileges beyond the chain tables, on {', '.join(extra_tables)}")
    extra_functions = [f for f in role.definers if f not in CHAIN_FUNCTIONS]
    if extra_functions:
        problems.append(
            "can execute definer functions beyond the chain resolvers: "
            f"{', '.join(extra_functions)}"
        )
    return [Gap(f"role {role.name}", p) for p in problems]


def _view_gaps(views: Iterable[View]) -> list[Gap]:
    gaps = []
    for view in views:
        subject = f"view {view.schema}.{view.name}"
        if view.materialized:
            gaps.append(Gap(subject, "is materialized: its rows were read without any tenant"))
        elif not view.security_invoker:
            gaps.append(Gap(subject, "lacks security_invoker, so it reads as its owner"))
    return gaps


def _function_gaps(functions: Iterable[DefinerFunction]) -> list[Gap]:
    gaps = []
    for function in functions:
        subject = f"function {function.schema}.{function.signature}"
        if function.search_path is None:
            gaps.append(Gap(subject, "is SECURITY DEFINER without a fixed search_path"))
            continue
        path = [part.strip().strip('"') for part in function.search_path.split(",")]
        if path[-1:] != ["pg_temp"]:
            gaps.append(Gap(subject, "search_path must end with pg_temp, else temp objects win"))
    return gaps
