"""Create and configure the database roles (idempotently), before migrations run.

Roles are cluster-wide, so they are not part of any migration: ``downgrade base``
on one database must not drop roles that other databases use. Per-database grants
(CONNECT, schema usage) are applied here too, for the database being migrated.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from tenancy.schema.citus import has_citus
from tenancy.schema.role_names import RoleNames
from tenancy.settings import TenancySettings


@dataclass(frozen=True)
class RoleSpec:
    """Attributes one role must have, and its password if one is given."""

    name: str
    attributes: str
    password: str | None


def role_specs(settings: TenancySettings, *, coordinator: bool = False) -> tuple[RoleSpec, ...]:
    """Return the five roles and the attributes each must carry (``coordinator``: on Citus)."""
    roles = settings.role_names()
    base = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
    # Citus runs a definer function's statements on the workers over connections
    # it opens as the function's owner, so there the resolver must be allowed to
    # log in (it still gets no password: the cluster's own authentication, e.g.
    # pg_dist_authinfo or certificates, is what admits it, and pg_hba should admit
    # it from the nodes only). On one node nothing ever logs in as it.
    resolver_login = "LOGIN" if coordinator else "NOLOGIN"

    def password(role: str) -> str | None:
        secret = settings.password_of(role)
        return None if secret is None else secret.get_secret_value()

    return (
        # Owns the schema and runs migrations; FORCE RLS applies to it like anyone.
        RoleSpec(roles.owner, f"LOGIN {base} NOBYPASSRLS", password(roles.owner)),
        # The application: RLS must apply, so never superuser, never BYPASSRLS, owns nothing.
        RoleSpec(roles.app, f"LOGIN {base} NOBYPASSRLS", password(roles.app)),
        # Reads and marks outbox rows of every tenant; its grants cover the outbox only.
        RoleSpec(roles.relay, f"LOGIN {base} BYPASSRLS", password(roles.relay)),
        # The chain-wide jobs' tenant-less steps: grants on the chain tables and two
        # resolvers only. NOBYPASSRLS too, so a stray grant on a tenant table would
        # still show it nothing (it never binds a tenant).
        RoleSpec(roles.chain, f"LOGIN {base} NOBYPASSRLS", password(roles.chain)),
        # Owns the SECURITY DEFINER resolvers; column grants only; no password ever.
        RoleSpec(roles.resolver, f"{resolver_login} {base} BYPASSRLS", None),
    )


def is_superuser(connection: Connection) -> bool:
    """Return whether the connected session user is a superuser."""
    return bool(
        connection.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
        ).scalar()
    )


def ensure_roles(connection: Connection, settings: TenancySettings) -> list[str]:
    """Create missing roles, set their attributes, grant database access; return what it did.

    A password is set only when one is configured (``TENANCY_*_PASSWORD``): an
    existing role keeps its password otherwise, and a new login role gets none,
    so it can log in only by a method that needs none (trust, certificate, peer)
    until an operator sets one. Refusing to create it instead would block every
    such deployment; a role without a password fails closed for password logins.

    Needs a superuser connection (BYPASSRLS can only be granted by one).
    """
    # Roles are cluster-wide: two services migrating at once (two databases) would
    # update the same pg_authid rows and one would fail ("tuple concurrently
    # updated"). pg_authid is a shared catalog, so this lock is cluster-wide too; it
    # waits for the other set-up's commit and blocks no reader or login.
    connection.execute(text("LOCK TABLE pg_catalog.pg_authid IN SHARE UPDATE EXCLUSIVE MODE"))
    done: list[str] = []
    for spec in role_specs(settings, coordinator=has_citus(connection)):
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
        done.append(_role_outcome(spec, created=not exists))
    roles = settings.role_names()
    # The owner hands the resolver functions to the resolver role, which requires membership.
    _execute_formatted(connection, "GRANT %I TO %I", roles.resolver, roles.owner)
    grant_database_access(connection, roles)
    return done


def grant_database_access(connection: Connection, roles: RoleNames) -> None:
    """Grant the roles what they need of the database being migrated and its schema.

    Run by a superuser, or by the owner role when it owns the database (the
    ``public`` schema of Postgres 15 belongs to the database owner), as when a
    service migrates a database created for it with the owner's URL.
    """
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    for role in (roles.owner, roles.app, roles.relay, roles.chain):
        _execute_formatted(connection, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
    # CREATE on the database lets the owner install trusted extensions (btree_gin).
    _execute_formatted(connection, "GRANT CREATE ON DATABASE %I TO %I", database, roles.owner)
    # Nobody else may create temporary objects here (PUBLIC has TEMP by default).
    _execute_formatted(connection, "REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC", database)
    _execute_formatted(connection, "GRANT USAGE, CREATE ON SCHEMA public TO %I", roles.owner)
    _execute_formatted(connection, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    # Postgres requires a function's new owner to hold CREATE on its schema; the
    # resolver role never logs in as a client, so only the owner (its member) uses it.
    _execute_formatted(connection, "GRANT CREATE ON SCHEMA public TO %I", roles.resolver)
    for role in (roles.app, roles.relay, roles.chain, roles.resolver):
        _execute_formatted(connection, "GRANT USAGE ON SCHEMA public TO %I", role)


def _role_outcome(spec: RoleSpec, *, created: bool) -> str:
    if created and spec.password is not None:
        return f"created role {spec.name}, password set"
    if created:
        login = "NOLOGIN" if spec.attributes.startswith("NOLOGIN") else "no password set"
        return f"created role {spec.name} ({login})"
    if spec.password is not None:
        return f"password of {spec.name} set"
    return f"role {spec.name} exists, password unchanged"


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
