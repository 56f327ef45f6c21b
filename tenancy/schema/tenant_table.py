"""A service's own tenant table: its composite foreign keys, its policies, its grants.

The same guarantees as the library's tables, from one predicate and without
copying SQL per table. In the models::

    class Invoice(TenantOwned, Base):
        __tablename__ = "invoices"
        __table_args__ = (tenant_foreign_key("customer_id", "customers"),)
        customer_id: Mapped[uuid.UUID]

In a migration, after ``op.create_table("invoices", ...)``::

    enable_tenant_table("invoices")     # RLS on and forced, policies, grants

and ``disable_tenant_table("invoices")`` before dropping it. For ``alembic check``,
``env.py`` passes ``tenant_policies("invoices")`` among its entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alembic import op
from alembic_utils.pg_policy import PGPolicy
from sqlalchemy import ForeignKeyConstraint

from tenancy.schema.declarative import TENANT_SETTING_SQL
from tenancy.schema.role_names import quote_identifier

#: The one tenant predicate: the row's tenant is the transaction's; NULL (no tenant)
#: matches nothing. ``current_setting`` is STABLE, so the setting is read once per
#: statement and serves as an index key; no sub-select, which Citus refuses in a policy.
TENANT_PREDICATE = f"org_id = {TENANT_SETTING_SQL}"

#: What the application role may do on a tenant table (RLS decides on which rows).
TENANT_PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE")


def tenant_foreign_key(
    columns: str | Sequence[str],
    target: str,
    *,
    target_columns: str | Sequence[str] = "id",
    ondelete: str | None = "CASCADE",
) -> ForeignKeyConstraint:
    """Return a foreign key ``(org_id, *columns)`` to ``target(org_id, *target_columns)``.

    Leading both sides with ``org_id`` makes a reference to another tenant's row
    impossible to store, whatever the policies: the database finds no such parent.
    """
    own = [columns] if isinstance(columns, str) else list(columns)
    theirs = [target_columns] if isinstance(target_columns, str) else list(target_columns)
    if len(own) != len(theirs):
        raise ValueError(f"{len(own)} columns cannot reference {len(theirs)} columns")
    return ForeignKeyConstraint(
        ["org_id", *own],
        [f"{target}.org_id", *(f"{target}.{column}" for column in theirs)],
        ondelete=ondelete,
    )


def tenant_policies(table: str, *, schema: str = "public") -> list[PGPolicy]:
    """Return the two policies of a tenant table, as alembic-utils entities.

    ``tenant_isolation`` (permissive) admits the tenant's rows; ``tenant_guard``
    (restrictive) is ANDed with every other policy, so none added later can widen it.
    """
    on = f"{quote_identifier(schema)}.{quote_identifier(table)}"
    return [
        PGPolicy(
            schema=schema,
            signature=name,
            on_entity=on,
            definition=(
                f"AS {kind} FOR ALL TO public "
                f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
            ),
        )
        for name, kind in (("tenant_isolation", "PERMISSIVE"), ("tenant_guard", "RESTRICTIVE"))
    ]


def tenant_table_statements(
    table: str,
    app_role: str,
    *,
    schema: str = "public",
    privileges: Iterable[str] = TENANT_PRIVILEGES,
) -> list[str]:
    """Return the DDL that puts ``table`` under row-level security for ``app_role``."""
    on = f"{quote_identifier(schema)}.{quote_identifier(table)}"
    granted = ", ".join(privileges)
    return [
        f"ALTER TABLE {on} ENABLE ROW LEVEL SECURITY",
        # FORCE: the owner is subject to the policies too.
        f"ALTER TABLE {on} FORCE ROW LEVEL SECURITY",
        f"GRANT {granted} ON {on} TO {quote_identifier(app_role)}",
    ]


def enable_tenant_table(
    table: str, *, schema: str = "public", privileges: Iterable[str] = TENANT_PRIVILEGES
) -> None:
    """In a migration: RLS enabled and forced on ``table``, its policies, the app role's grants."""
    # Imported here: it reads the running migration's configuration.
    from tenancy.schema.migration import migration_role_names

    app_role = migration_role_names().app
    for statement in tenant_table_statements(table, app_role, schema=schema, privileges=privileges):
        op.execute(statement)
    for policy in tenant_policies(table, schema=schema):
        # alembic-utils registers create_entity/drop_entity on Operations at import.
        op.create_entity(policy)  # type: ignore[attr-defined]


def disable_tenant_table(table: str, *, schema: str = "public") -> None:
    """In a migration's downgrade: drop what ``enable_tenant_table`` added (before the table)."""
    for policy in tenant_policies(table, schema=schema):
        op.drop_entity(policy)  # type: ignore[attr-defined]
