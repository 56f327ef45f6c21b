"""Audit a live database for the gaps that would let one tenant see another's rows.

The audit reads ``pg_catalog`` (``tenancy.audit.pg_catalog``), judges every table of the
schema (``tenancy.audit.table_judgement``), and checks what sits around the tables: the
application role (no superuser, no BYPASSRLS, owns nothing, cannot list a chain's
tenants), the relay role (bypasses RLS, so its grants must stop at the outbox),
the chain-jobs role (like the app role, and its grants stop at the chain tables
and the two chain resolvers), views (must be ``security_invoker``) and
``SECURITY DEFINER`` functions (must pin ``search_path``).
Beyond the tables, it looks at what reaches tenant rows around them
(``tenancy.audit.exposure``), and on a Citus coordinator how the tables are laid
out (``tenancy.audit.distribution``). What to audit (schemas, roles, tenant column and
binding) comes from an ``IsolationConfig``; an audit that checked no tenant table
at all cannot pass (``AuditReport.checked_nothing``).
Any finding is a ``Gap``; ``AuditReport.ok`` is false then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.audit.distribution import distribution_gaps
from tenancy.audit.exposure import (
    assumable_owners,
    privileged_definers,
    tenant_setting_defaults,
    writable_without_rls,
)
from tenancy.audit.isolation_config import IsolationConfig
from tenancy.audit.pg_catalog import (
    DefinerFunction,
    RenderedPredicates,
    Role,
    Table,
    View,
    read_definer_functions,
    read_foreign_keys,
    read_indexes,
    read_policies,
    read_role,
    read_schemas,
    read_tables,
    read_views,
    render_predicates,
)
from tenancy.audit.table_judgement import Gap, TableAudit, TableRules, audit_table
from tenancy.audit.table_kind import TableKind, table_kind, tenant_column, uses_library_tables
from tenancy.db.engine import create_engine, rls_bypass_problems
from tenancy.errors import raise_translated
from tenancy.schema.citus import LIBRARY_REFERENCE_TABLES
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
#: This library's definer functions the app role may run, each reviewed to return
#: only what its one caller needs (a link's tenant, a login's memberships, ...).
LIBRARY_DEFINERS = frozenset(
    {
        "resolve_payment_link",
        "resolve_login",
        "accept_invitation",
        "created_by_this_transaction",
        "find_invitee",
        "founded_by_this_transaction",
        "found_organization",
        "join_organization",
        "register_member",
        "register_user",
        "remove_membership",
    }
)


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit found; ``ok`` when it checked tenant tables and found no gap."""

    tables: tuple[TableAudit, ...]
    app_role: Role | None
    relay_role: Role | None
    chain_role: Role | None
    views: tuple[View, ...]
    definer_functions: tuple[DefinerFunction, ...]
    gaps: tuple[Gap, ...]
    schemas: tuple[str, ...] = ()
    binding: str = ""

    @property
    def ok(self) -> bool:
        """Return whether the database passed every check."""
        return not self.gaps

    @property
    def checked_nothing(self) -> bool:
        """Return whether no tenant table was found, so nothing was really checked."""
        return not any(t.kind in (TableKind.TENANT, TableKind.ROOT) for t in self.tables)

    @property
    def app_role_missing(self) -> bool:
        """Return whether the configured app role does not exist."""
        return self.app_role is None


async def audit_database(
    settings: TenancySettings,
    config: IsolationConfig | None = None,
    *,
    app_role: str | None = None,
) -> AuditReport:
    """Inspect the database at ``settings.admin_url()`` (owner or superuser) and judge it.

    The connecting role needs CREATE on an audited schema for the rolled-back
    predicate probe. ``app_role`` overrides the configuration's (default: the
    deployment's app role).

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    engine = create_engine(settings, url=settings.admin_url())
    roles = settings.role_names()
    config = config or IsolationConfig(app_role=roles.app)
    try:
        async with engine.connect() as connection:
            report = await audit_connection(connection, config, app_role=app_role, roles=roles)
            await connection.rollback()
    except Exception as exc:
        raise_translated(exc)
        raise
    finally:
        await engine.dispose()
    return report


async def audit_connection(
    connection: AsyncConnection,
    config: IsolationConfig | None = None,
    *,
    app_role: str | None = None,
    roles: RoleNames | None = None,
) -> AuditReport:
    """Judge the database as ``connection`` sees it, inside its current transaction.

    ``roles`` names this deployment's own relay and chain roles (default: the
    ``tenancy_*`` names), checked only where this library's schema is audited.

    Writes nothing that outlives a savepoint; the caller owns the transaction.
    """
    roles = roles or RoleNames()
    config = config or IsolationConfig(app_role=roles.app)
    app_role = app_role or config.app_role
    schemas = config.schemas or await read_schemas(connection)
    tables = [t for t in await read_tables(connection, schemas) if t.name not in IGNORED_TABLES]
    policies = await read_policies(connection, schemas)
    kinds = {t.qualified: table_kind(t, config) for t in tables}
    tenant_tables = {
        t.qualified: tenant_column(t, kinds[t.qualified], config)
        for t in tables
        if kinds[t.qualified] in (TableKind.TENANT, TableKind.ROOT)
    }
    rules = TableRules(
        await _predicates(connection, tables, tenant_tables, config),
        app_role,
        tuple(await read_indexes(connection, schemas)),
        tuple(await read_foreign_keys(connection, schemas)),
        tenant_tables,
        config,
        connection.dialect.identifier_preparer.quote,
    )
    library = uses_library_tables(config)
    app = await read_role(connection, app_role, schemas)
    relay = await read_role(connection, roles.relay, schemas) if library else None
    chain = await read_role(connection, roles.chain, schemas) if library else None
    views = await read_views(connection)
    functions = await read_definer_functions(connection)
    audited = tuple(
        audit_table(
            t, tuple(p for p in policies if (p.schema, p.table) == (t.schema, t.name)), rules
        )
        for t in tables
    )
    declared = {q for q, kind in kinds.items() if kind in (TableKind.SHARED, TableKind.GLOBAL)}
    reviewed = (LIBRARY_DEFINERS if library else frozenset()) | config.reviewed_definers
    gaps = [
        # An unmigrated database has nothing to leak yet, but must not pass a CI gate.
        *(
            []
            if tenant_tables
            else [
                Gap(
                    "database",
                    f"has no tenant tables in schemas {', '.join(schemas) or '(none)'}",
                    "nothing-checked",
                )
            ]
        ),
        *(gap for table in audited for gap in table.gaps),
        *_app_role_gaps(app, app_role),
        *(await _exposure_gaps(connection, app, schemas, tenant_tables, declared, reviewed)),
        *(
            await tenant_setting_defaults(connection, app_role, config.policy_setting)
            if config.policy_setting
            else []
        ),
        *(
            await distribution_gaps(
                connection,
                kinds,
                tenant_tables,
                app_role,
                frozenset(f"public.{t}" for t in LIBRARY_REFERENCE_TABLES)
                if library
                else frozenset(),
            )
        ),
        *_relay_role_gaps(relay),
        *_chain_role_gaps(chain),
        *_view_gaps(views),
        *_function_gaps(functions),
    ]
    return AuditReport(
        audited,
        app,
        relay,
        chain,
        tuple(views),
        tuple(functions),
        tuple(gaps),
        tuple(schemas),
        config.binding_mode,
    )


async def _predicates(
    connection: AsyncConnection,
    tables: list[Table],
    tenant_tables: dict[str, str],
    config: IsolationConfig,
) -> dict[str, RenderedPredicates]:
    # One rendering per tenant-column type; none when the binding names no setting.
    setting = config.policy_setting
    if setting is None or not tenant_tables:
        return {}
    types = {
        t.column_types[tenant_tables[t.qualified]]
        for t in tables
        if t.qualified in tenant_tables and tenant_tables[t.qualified] in t.column_types
    }
    home = next(t.schema for t in tables if t.qualified in tenant_tables)
    return {
        type_sql: await render_predicates(connection, home, type_sql, setting)
        for type_sql in sorted(types)
    }


async def _exposure_gaps(
    connection: AsyncConnection,
    app: Role | None,
    schemas: Sequence[str],
    tenant_tables: dict[str, str],
    declared: set[str],
    reviewed: frozenset[str],
) -> list[Gap]:
    if app is None:
        return []
    return [
        *await writable_without_rls(connection, app.name, schemas, declared),
        *await privileged_definers(connection, app.name, tenant_tables, reviewed),
        *await assumable_owners(connection, app.name, schemas),
    ]


def _app_role_gaps(role: Role | None, name: str) -> list[Gap]:
    if role is None:
        return [Gap(f"role {name}", "does not exist", "unknown-role")]
    problems = _rls_problems(role)
    problems.extend(
        f"can execute {function}, which lists every tenant with transactions on a chain"
        for function in role.definers
        if function in CHAIN_ONLY_FUNCTIONS
    )
    return [Gap(f"role {name}", p, "app-role-bypasses-rls") for p in problems]


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
    return [Gap(f"role {role.name}", p, "role-too-broad") for p in problems]


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
    return [Gap(f"role {role.name}", p, "role-too-broad") for p in problems]


def _view_gaps(views: Iterable[View]) -> list[Gap]:
    gaps = []
    for view in views:
        subject = f"view {view.schema}.{view.name}"
        if view.materialized:
            gaps.append(
                Gap(subject, "is materialized: its rows were read without any tenant", "matview")
            )
        elif not view.security_invoker:
            gaps.append(
                Gap(
                    subject,
                    "lacks security_invoker, so it reads as its owner",
                    "view-not-security-invoker",
                )
            )
    return gaps


def _function_gaps(functions: Iterable[DefinerFunction]) -> list[Gap]:
    gaps = []
    for function in functions:
        subject = f"function {function.schema}.{function.signature}"
        if function.search_path is None:
            gaps.append(
                Gap(
                    subject,
                    "is SECURITY DEFINER without a fixed search_path",
                    "definer-search-path",
                )
            )
            continue
        path = [part.strip().strip('"') for part in function.search_path.split(",")]
        if path[-1:] != ["pg_temp"]:
            gaps.append(
                Gap(
                    subject,
                    "search_path must end with pg_temp, else temp objects win",
                    "definer-search-path",
                )
            )
    return gaps
