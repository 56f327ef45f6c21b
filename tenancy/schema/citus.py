"""Citus as a target: the tenant tables distributed by their tenant, global ones replicated.

On a coordinator (a database with the ``citus`` extension) the migration ends by
laying the schema out for scale-out, in its own transaction:

* the tenant root (``organizations``) is distributed by ``id`` and every tenant
  table by its tenant column, all co-located, so a tenant's rows and the foreign
  keys between them live on one node and a tenant's statements are routed there;
* the global tables the caller names (``users``, the chain bookkeeping) become
  reference tables, copied to every node;
* ``citus.propagate_set_commands = 'local'`` is set for the database, so the
  ``SET LOCAL app.org_id`` that opens every tenant transaction reaches the
  workers for any client (raw drivers and poolers too). Without it the workers
  see no tenant and every distributed read returns nothing: fail-closed, but
  useless.

Citus refuses some shapes outright (a sub-query in a policy, a unique key that
leaves out the tenant column). They are found from the catalog first, and the
step refuses with all of them named before it changes anything. Running it again
changes nothing; on plain PostgreSQL it does nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from tenancy.errors import DistributionRefused
from tenancy.schema.role_names import quote_identifier

#: The setting that makes Citus forward ``SET LOCAL`` to the workers of a transaction.
PROPAGATE_SET_COMMANDS = "citus.propagate_set_commands"


@dataclass(frozen=True)
class DistributionPlan:
    """What to distribute: the tenant root, the tenant tables, the reference tables."""

    root: str = "organizations"
    root_column: str = "id"
    tenant_column: str = "org_id"
    #: Tables copied to every node (global identities, shared facts).
    reference: Sequence[str] = ()
    #: Tables to leave alone (bookkeeping such as Alembic's version tables).
    skip: Sequence[str] = field(default=("alembic_version", "tenancy_alembic_version"))


#: The library's tables copied to every node: the global ones (no tenant column) and
#: the lookups of its global keys (tenant rows, but keyed without the tenant, so
#: they cannot be distributed by it; distributed tables reference them).
LIBRARY_REFERENCE_TABLES = (
    "users",
    "chain_checkpoints",
    "chain_blocks",
    "payment_link_tokens",
    "wallet_addresses",
    "wallet_address_holders",
    "invitation_tokens",
)


def library_distribution_plan(connection: Connection) -> DistributionPlan:
    """Return the plan for the library's schema: its global tables that exist become reference."""
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(:names)"
        ),
        {"names": list(LIBRARY_REFERENCE_TABLES)},
    )
    present = {r[0] for r in rows}
    return DistributionPlan(reference=tuple(t for t in LIBRARY_REFERENCE_TABLES if t in present))


def has_citus(connection: Connection) -> bool:
    """Return whether the connected database has the ``citus`` extension (is a coordinator)."""
    found = connection.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))
    return found.first() is not None


def distribution_columns(connection: Connection) -> dict[int, str]:
    """Return the distribution column of every hash-distributed table, by the table's oid.

    Needs the ``citus`` extension (``has_citus``).
    """
    rows = connection.execute(
        text(
            "SELECT logicalrelid::oid, column_to_column_name(logicalrelid, partkey)"
            " FROM pg_dist_partition WHERE partmethod = 'h'"
        )
    )
    return {int(oid): str(column) for oid, column in rows}


def tenant_tables(connection: Connection, plan: DistributionPlan) -> list[str]:
    """Return the ``public`` tables with the tenant column to distribute by it, sorted.

    The root, the skipped and the reference tables are left out.
    """
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = :column"
            " AND NOT a.attisdropped"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " ORDER BY c.relname"
        ),
        {"column": plan.tenant_column},
    )
    excluded = {plan.root, *plan.skip, *plan.reference}
    return [r[0] for r in rows if r[0] not in excluded]


def blockers(connection: Connection, plan: DistributionPlan) -> list[str]:
    """Return every reason Citus would refuse ``plan``, read from the catalog (empty: none)."""
    return _blockers(connection, plan, tenant_tables(connection, plan))


def _blockers(connection: Connection, plan: DistributionPlan, tenants: list[str]) -> list[str]:
    distributed = [plan.root, *tenants]
    found: list[str] = []
    policies = connection.execute(
        text(
            "SELECT c.relname, p.polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(:tables)"
            " AND (coalesce(pg_get_expr(p.polqual, p.polrelid), '') ~* '\\mselect\\M'"
            " OR coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') ~* '\\mselect\\M')"
            " ORDER BY 1, 2"
        ),
        {"tables": [*distributed, *plan.reference]},
    )
    found += [f"policy {p!r} on {t} holds a sub-query" for t, p in policies]
    keys = connection.execute(
        text(
            "SELECT c.relname, k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relname = ANY(:tables)"
            " AND k.contype IN ('p', 'u', 'x')"
            # An exclusion constraint counts only with equality on the tenant column.
            " AND NOT EXISTS (SELECT 1 FROM unnest(k.conkey, k.conexclop) AS col(attnum, op)"
            "   JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = col.attnum"
            "   WHERE a.attname = CASE WHEN c.relname = :root THEN :root_column ELSE :column END"
            "   AND (col.op IS NULL OR col.op::regoper::text = '='))"
            " ORDER BY 1, 2"
        ),
        {
            "tables": distributed,
            "root": plan.root,
            "root_column": plan.root_column,
            "column": plan.tenant_column,
        },
    )
    found += [f"unique key {k!r} on {t} leaves out the tenant column" for t, k in keys]
    return found


def distribute(connection: Connection, plan: DistributionPlan) -> list[str]:
    """Lay the schema out on a Citus coordinator as ``plan`` says; return what it did.

    A no-op without Citus and for tables already distributed. Runs in the
    caller's transaction; foreign keys between the tables are dropped and
    re-created around the distribution (Citus cannot convert a table that a
    still-local table references).

    Raises:
        DistributionRefused: a policy or key Citus refuses; nothing was changed.
    """
    if not has_citus(connection):
        return []
    done: list[str] = []
    tenants = tenant_tables(connection, plan)
    wanted = [plan.root, *tenants, *plan.reference]
    pending = [t for t in wanted if t not in _citus_tables(connection)]
    if pending:
        refused = _blockers(connection, plan, tenants)
        if refused:
            raise DistributionRefused(refused)
        # Shard DDL one connection per node: parallel shard work after the DDL of
        # this very transaction would not see it.
        connection.execute(text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
        foreign_keys = _drop_foreign_keys(connection, wanted)
        for table in plan.reference:
            if table in pending:
                connection.execute(text("SELECT create_reference_table(:t)"), {"t": table})
                done.append(f"reference table {table}")
        for table, column in [(plan.root, plan.root_column)] + [
            (t, plan.tenant_column) for t in tenants
        ]:
            if table in pending:
                connection.execute(
                    text("SELECT create_distributed_table(:t, :c, colocate_with => :with)"),
                    {"t": table, "c": column, "with": "none" if table == plan.root else plan.root},
                )
                done.append(f"distributed {table} by {column}")
        distributed = {plan.root, *tenants}
        for table, name, target, definition in foreign_keys:
            if table in plan.reference and target in distributed:
                # Citus keeps no foreign key from a reference table to a distributed
                # one: what it enforced (a lookup row's organization exists, and goes
                # with it) is the application's to keep now.
                done.append(f"dropped foreign key {name} of reference table {table}")
                continue
            connection.execute(
                text(
                    f"ALTER TABLE public.{quote_identifier(table)}"
                    f" ADD CONSTRAINT {quote_identifier(name)} {definition}"
                )
            )
    return done


def propagate_tenant_setting(connection: Connection) -> list[str]:
    """Make ``SET LOCAL`` reach the workers for every session of this database; return what changed.

    Needs the database's owner or a superuser. A no-op without Citus or when already set.
    """
    if not has_citus(connection):
        return []
    current = connection.execute(
        text(
            "SELECT s.setconfig FROM pg_db_role_setting s"
            " JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = current_database() AND s.setrole = 0"
        )
    ).scalar()
    wanted = f"{PROPAGATE_SET_COMMANDS}=local"
    if current is not None and wanted in current:
        return []
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    connection.execute(
        text(f"ALTER DATABASE {quote_identifier(database)} SET {PROPAGATE_SET_COMMANDS} = 'local'")
    )
    return [f"{PROPAGATE_SET_COMMANDS} = 'local' for database {database}"]


def _citus_tables(connection: Connection) -> set[str]:
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        )
    )
    return {r[0] for r in rows}


def _drop_foreign_keys(
    connection: Connection, tables: list[str]
) -> list[tuple[str, str, str, str]]:
    rows = connection.execute(
        text(
            "SELECT c.relname, k.conname, t.relname, pg_get_constraintdef(k.oid)"
            " FROM pg_constraint k"
            " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_class t ON t.oid = k.confrelid"
            " WHERE n.nspname = 'public' AND k.contype = 'f' AND c.relname = ANY(:tables)"
            " ORDER BY 1, 2"
        ),
        {"tables": tables},
    ).all()
    for table, name, _, _ in rows:
        quoted = f"public.{quote_identifier(table)}"
        connection.execute(text(f"ALTER TABLE {quoted} DROP CONSTRAINT {quote_identifier(name)}"))
    return [(t, n, target, d) for t, n, target, d in rows]
