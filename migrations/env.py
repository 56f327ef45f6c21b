"""Alembic environment: bootstrap roles, then migrate as the owner role.

The URL comes from ``config.attributes["url"]`` (set by ``tenancy migrate``), from
``-x url=...``, or from the settings (``TENANCY_ADMIN_DATABASE_URL`` first). When
connected as a superuser, roles are ensured and the migration runs under
``SET ROLE tenancy_owner`` so that every object is owned by the owner role.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import context
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_policy import PGPolicy
from alembic_utils.replaceable_entity import register_entities
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from models import Base
from tenancy.policy import entities
from tenancy.resources import functions_dir, policies_dir
from tenancy.roles import ensure_roles, is_superuser, mark_leakproof_operators
from tenancy.settings import OWNER_ROLE, TenancySettings, async_url

config = context.config
settings = TenancySettings()
x_args = context.get_x_argument(as_dictionary=True)


def _url() -> str:
    url = (
        config.attributes.get("url")
        or x_args.get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    return (
        async_url(url).render_as_string(hide_password=False)
        if url
        else (settings.admin_url().render_as_string(hide_password=False))
    )


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


def _run(connection: Connection) -> None:
    if is_superuser(connection):
        ensure_roles(connection, settings)
        mark_leakproof_operators(connection)
        connection.exec_driver_sql(f'SET ROLE "{OWNER_ROLE}"')
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        include_object=_include_object,
        transaction_per_migration=False,
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
