"""Throwaway databases and small helpers shared by the CLI suite's tests and fixtures."""

from __future__ import annotations

import asyncio
import uuid

from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import TenancySettings
from tenancy.cli.command import main
from tenancy.settings import APP_ROLE


def janitor(server: URL, name: str, template: str | None = None) -> DatabaseJanitor:
    """Return a janitor creating database ``name`` on ``server`` (cloning ``template``)."""
    return DatabaseJanitor(
        user=server.username or "postgres",
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        dbname=name,
        template_dbname=template,
    )


def new_name(kind: str) -> str:
    """Return a fresh database name for this suite."""
    return f"tenancy_cli_{kind}_{uuid.uuid4().hex[:10]}"


def settings_for(url: URL) -> TenancySettings:
    """Settings with ``url`` as the admin URL and the derived app-role URL."""
    base = TenancySettings(admin_database_url=url.render_as_string(hide_password=False))
    app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    return base.model_copy(update={"database_url": app_url, "pool_size": 2, "max_overflow": 0})


async def execute_ddl(engine: AsyncEngine, *statements: str) -> None:
    """Run ``statements`` in one committed transaction (test setup only)."""
    async with engine.begin() as connection:
        for statement in statements:
            await connection.exec_driver_sql(statement)


async def run_cli(*argv: str) -> int:
    """Run ``tenancy.cli.command.main`` in a worker thread (its ``asyncio.run`` needs no loop)."""
    return await asyncio.to_thread(main, list(argv))
