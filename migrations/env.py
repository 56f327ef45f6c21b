"""Alembic environment: bootstrap roles, then migrate as the owner role.

The URL comes from ``config.attributes["url"]`` (set by ``tenancy migrate``), from
``-x url=...``, or from the settings (``TENANCY_ADMIN_DATABASE_URL``, then an
explicitly set ``TENANCY_DATABASE_URL``); with none of them it refuses to run.
When connected as a superuser, roles are ensured and the migration runs under
``SET ROLE`` to the owner role so that every object is owned by it. The settings
(role names, passwords) come from ``config.attributes["settings"]`` or the
``TENANCY_*`` environment; the migrations read the role names from
``config.attributes["roles"]`` (``tenancy.schema.migration.migration_roles``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_policy import PGPolicy
from alembic_utils.replaceable_entity import register_entities
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from repositories.models import Base
from tenancy.errors import ConfigurationError
from tenancy.schema.policy import entities
from tenancy.schema.resources import functions_dir, policies_dir
from tenancy.schema.roles import ensure_roles, is_superuser, mark_leakproof_operators
from tenancy.settings import TenancySettings, async_url

config = context.config
settings: TenancySettings = config.attributes.get("settings") or TenancySettings()
roles = settings.role_names()
config.attributes["roles"] = roles
#: Where to say what was done (roles, revisions); ``tenancy migrate`` passes print.
report: Callable[[str], None] = config.attributes.get("report") or (lambda _line: None)
x_args = context.get_x_argument(as_dictionary=True)


def _url() -> str:
    url = (
        config.attributes.get("url")
        or x_args.get("url")
        or config.get_main_option("sqlalchemy.url")
        or settings.admin_database_url
        # Only a URL someone set: the built-in default is the app role's, never an owner's.
        or (settings.database_url if "database_url" in settings.model_fields_set else None)
    )
    if not url:
        raise ConfigurationError(
            "no database URL: set TENANCY_ADMIN_DATABASE_URL or pass -x url=..."
        )
    return async_url(url).render_as_string(hide_password=False)


def _sql_dir(key: str, default: Path) -> Path:
    value = config.attributes.get(key) or x_args.get(key)
    return Path(value) if value else default


# `-x entities=off` compares tables only: needed when generating a revision whose
# tables the SQL entities refer to but which do not exist yet.
if x_args.get("entities") != "off":
    # Only policies and functions are managed as entities; grants and extensions are
    # written in migrations, and alembic-utils would otherwise propose dropping them.
    register_entities(
        entities(
            _sql_dir("policies_dir", policies_dir()), _sql_dir("functions_dir", functions_dir())
        ),
        entity_types=[PGPolicy, PGFunction],
    )


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # btree_gin and other extensions' objects are not ours to manage.
    return not (type_ == "table" and name == "alembic_version")


def _report_step(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    if step.up_revision_id is None:
        return
    script = context.script.get_revision(step.up_revision_id)
    doc = (script.doc or "").splitlines()[0] if script and script.doc else ""
    verb = "applied" if step.is_upgrade else "reverted"
    report(f"{verb} {step.up_revision_id}: {doc}".rstrip(": "))


def _require_owner(connection: Connection) -> None:
    # Migrating as the app role would fail half-way on the first DDL, or worse,
    # leave objects owned by a role that must own nothing.
    user = connection.execute(text("SELECT session_user")).scalar_one()
    if user != roles.owner:
        raise ConfigurationError(
            f"migrations need an owner ({roles.owner}) or superuser URL; connected as {user}"
        )


def _prepare(connection: Connection) -> None:
    if is_superuser(connection):
        for line in ensure_roles(connection, settings):
            report(line)
        mark_leakproof_operators(connection)
        connection.exec_driver_sql(f"SET ROLE {roles.quoted().owner}")
        connection.commit()
    else:
        _require_owner(connection)


def _run(connection: Connection) -> None:
    # `tenancy current` only reads the version table: it must change no role.
    if not config.attributes.get("inspect_only"):
        _prepare(connection)
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        include_object=_include_object,
        transaction_per_migration=False,
        on_version_apply=_report_step,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(_run_async())
