"""Create and configure the database roles (idempotently), before migrations run.

Roles are cluster-wide, so they are not part of any migration: ``downgrade base``
on one database must not drop roles that other databases use. Per-database grants
(CONNECT, schema usage) are applied here too, for the database being migrated.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from tenancy.settings import (
    APP_ROLE,
    CHAIN_ROLE,
    OWNER_ROLE,
    RELAY_ROLE,
    RESOLVER_ROLE,
    TenancySettings,
)


@dataclass(frozen=True)
class RoleSpec:
    """Attributes one role must have."""

    name: str
    attributes: str
    password: str | None


def role_specs(settings: TenancySettings) -> tuple[RoleSpec, ...]:
    """Return the five roles and the attributes each must carry."""
    base = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
    return (
        # Owns the schema and runs migrations; FORCE RLS applies to it like anyone.
        RoleSpec(
            OWNER_ROLE, f"LOGIN {base} NOBYPASSRLS", settings.owner_password.get_secret_value()
        ),
        # The application: RLS must apply, so never superuser, never BYPASSRLS, owns nothing.
        RoleSpec(APP_ROLE, f"LOGIN {base} NOBYPASSRLS", settings.app_password.get_secret_value()),
        # Reads and marks outbox rows of every tenant; its grants cover the outbox only.
        RoleSpec(RELAY_ROLE, f"LOGIN {base} BYPASSRLS", settings.relay_password.get_secret_value()),
        # The chain-wide jobs' tenant-less steps: grants on the chain tables and two
        # resolvers only. NOBYPASSRLS too, so a stray grant on a tenant table would
        # still show it nothing (it never binds a tenant).
        RoleSpec(
            CHAIN_ROLE, f"LOGIN {base} NOBYPASSRLS", settings.chain_password.get_secret_value()
        ),
        # Owns the SECURITY DEFINER resolvers; cannot log in; column grants only.
        RoleSpec(RESOLVER_ROLE, f"NOLOGIN {base} BYPASSRLS", None),
    )


def is_superuser(connection: Connection) -> bool:
    """Return whether the connected session user is a superuser."""
    return bool(
        connection.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
        ).scalar()
    )


def ensure_roles(connection: Connection, settings: TenancySettings) -> None:
    """Create missing roles, set their attributes and passwords, grant database access.

    Needs a superuser connection (BYPASSRLS can only be granted by one).
    """
    for spec in role_specs(settings):
        exists = connection.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": spec.name}
        ).scalar()
        if not exists:
            _execute_formatted(connection, "CREATE ROLE %I", spec.name)
        _execute_formatted(connection, f"ALTER ROLE %I WITH {spec.attributes}", spec.name)
        if spec.password is not None:
            _execute_formatted(
                connection, "ALTER ROLE %I WITH PASSWORD %L", spec.name, spec.password
            )
    # The owner hands the resolver functions to tenancy_resolver, which requires membership.
    _execute_formatted(connection, "GRANT %I TO %I", RESOLVER_ROLE, OWNER_ROLE)
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    for role in (OWNER_ROLE, APP_ROLE, RELAY_ROLE, CHAIN_ROLE):
        _execute_formatted(connection, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
    # CREATE on the database lets the owner install trusted extensions (btree_gin).
    _execute_formatted(connection, "GRANT CREATE ON DATABASE %I TO %I", database, OWNER_ROLE)
    # Nobody else may create temporary objects here (PUBLIC has TEMP by default).
    _execute_formatted(connection, "REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC", database)
    _execute_formatted(connection, "GRANT USAGE, CREATE ON SCHEMA public TO %I", OWNER_ROLE)
    _execute_formatted(connection, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    # Postgres requires a function's new owner to hold CREATE on its schema; the
    # resolver role cannot log in, so only the owner (its member) could use it.
    _execute_formatted(connection, "GRANT CREATE ON SCHEMA public TO %I", RESOLVER_ROLE)
    for role in (APP_ROLE, RELAY_ROLE, CHAIN_ROLE, RESOLVER_ROLE):
        _execute_formatted(connection, "GRANT USAGE ON SCHEMA public TO %I", role)


def _execute_formatted(connection: Connection, template: str, *args: str) -> None:
    # Utility statements take no bind parameters; the server's format() quotes
    # identifiers (%I) and literals (%L), so no value is spliced in by Python.
    placeholders = ", ".join(f"CAST(:a{i} AS text)" for i in range(len(args)))
    query = f"SELECT format(CAST(:template AS text){', ' if args else ''}{placeholders})"
    params = {"template": template, **{f"a{i}": a for i, a in enumerate(args)}}
    statement = connection.execute(text(query), params).scalar_one()
    connection.exec_driver_sql(statement)


#: Built-in array operators the capability queries use (``@>``, ``&&``). Postgres
#: applies a condition inside an index scan of an RLS table only if its function is
#: LEAKPROOF; these compare arrays and raise no error that depends on the values,
#: so marking them lets the GIN index (org_id, capabilities) serve the capability
#: condition itself instead of filtering every agent of the tenant.
LEAKPROOF_FUNCTIONS = (
    "pg_catalog.arraycontains(anyarray, anyarray)",
    "pg_catalog.arrayoverlap(anyarray, anyarray)",
)


def mark_leakproof_operators(connection: Connection) -> None:
    """Mark the array operators of ``LEAKPROOF_FUNCTIONS`` LEAKPROOF (needs a superuser)."""
    for function in LEAKPROOF_FUNCTIONS:
        connection.exec_driver_sql(f"ALTER FUNCTION {function} LEAKPROOF")
