"""Throwaway databases: created, migrated for real, and dropped, for the demo and benchmarks."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tenancy.errors import ConfigurationError, DatabaseUnavailable
from tenancy.internals import quiet_cancelled_tls_negotiation
from tenancy.schema.migration import upgrade
from tenancy.settings import APP_ROLE, TenancySettings

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"

# CREATE DATABASE takes no bind parameters: the name is our own, checked against
# a plain identifier pattern, and then double-quoted.
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def scratch_name(prefix: str) -> str:
    """Return a fresh database name starting with ``prefix``."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def scratch_database(server_url: str, name: str) -> AsyncIterator[URL]:
    """Create database ``name``, migrate it, yield its URL; drop it afterwards, even on error.

    ``server_url`` is a superuser URL of the server (its database, if any, is only
    used to connect for CREATE and DROP).

    Raises:
        ConfigurationError: the server URL is malformed or the database cannot be created.
        DatabaseUnavailable: the server cannot be reached.
    """
    if _DATABASE_NAME.fullmatch(name) is None:
        raise ConfigurationError(f"not a plain database name: {name!r}")
    try:
        server = make_url(server_url)
    except ArgumentError as exc:
        raise ConfigurationError(f"malformed server URL {server_url!r}") from exc
    admin = await _connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as exc:
        raise ConfigurationError(
            f"cannot create a database on {_shown(server)} ({type(exc).__name__}); "
            "a superuser URL is needed"
        ) from exc
    finally:
        await admin.close()
    try:
        url = server.set(drivername="postgresql+asyncpg", database=name)
        # Alembic runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        # Ctrl-C or a timeout often lands during the cleanup itself (DROP DATABASE
        # takes a checkpoint); the drop runs to its end regardless.
        await _despite_cancellation(_drop(server, name))


async def _drop(server: URL, name: str) -> None:
    # A fresh connection: the cleanup must not depend on one held since the start.
    # FORCE ends sessions a cancelled step may have left behind.
    admin = await _connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _despite_cancellation(step: Coroutine[Any, Any, None]) -> None:
    """Run ``step`` to its end even if the caller is cancelled meanwhile, then pass that on.

    A failure of ``step`` wins over the cancellation: a cleanup that did not happen
    must not be reported as an interruption that cleaned up. Only the cancellation
    of ``step`` itself (the event loop shutting down) stops it.
    """
    task = asyncio.ensure_future(step)
    interrupted: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.cancelled():
                raise
            interrupted = exc
    task.result()
    if interrupted is not None:
        raise interrupted


def app_settings(admin_url: URL, **options: object) -> TenancySettings:
    """Settings for a scratch database: its superuser URL as admin, the app role's as app."""
    base = TenancySettings(
        admin_database_url=admin_url.render_as_string(hide_password=False),
        **options,  # type: ignore[arg-type]  # pool and pooler fields, validated by pydantic
    )
    app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    return base.model_copy(update={"database_url": app_url})


async def _connect(server: URL) -> asyncpg.Connection:
    maintenance = server.set(drivername="postgresql", database=server.database or "postgres")
    # Ctrl-C while the demo connects must not print an error after its own message.
    quiet_cancelled_tls_negotiation()
    try:
        return await asyncpg.connect(maintenance.render_as_string(hide_password=False))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {_shown(server)} ({type(exc).__name__}); "
            "start it, or pass another server URL"
        ) from exc


def _shown(server: URL) -> str:
    return server.render_as_string(hide_password=True)
