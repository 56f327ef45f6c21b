"""Fixtures of the fault suite: a second PostgreSQL instance, migrated, used as the app role."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from repositories import PlatformDatabase
from tenancy import Database, TenancySettings
from tenancy.schema.migration import upgrade
from tests.faults.server import PG_BIN, SUPERUSER, FaultServer
from tests.faults.support import FaultDatabase, app_settings

DBNAME = "tenancy_faults"


@pytest.fixture(scope="package")
def fault_server() -> Iterator[FaultServer]:
    """A throwaway server of this suite's own; thawed and stopped whatever happens."""
    server = FaultServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="package")
def fault_db(fault_server: FaultServer) -> FaultDatabase:
    """The database on ``fault_server``, migrated with the real migrations (roles included)."""
    port = str(fault_server.port)
    createdb = [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", SUPERUSER, DBNAME]
    subprocess.run(createdb, check=True, capture_output=True, timeout=30)
    upgrade(fault_server.url(DBNAME))
    return FaultDatabase(fault_server, DBNAME)


OpenDatabase = Callable[..., Awaitable[Database]]


@pytest.fixture
async def open_database(fault_db: FaultDatabase) -> AsyncIterator[OpenDatabase]:
    """Connect ``Database``s as ``tenancy_app`` with setting overrides; disposed after the test.

    Each gets its own ``application_name``, so the server finds its sessions.
    """
    opened: list[Database] = []

    async def connect(**overrides: Any) -> Database:
        settings: TenancySettings = app_settings(fault_db, **overrides)
        database = await PlatformDatabase.connect(settings)
        opened.append(database)
        return database

    yield connect
    # The server is thawed by then (each test thaws in its own finally).
    fault_db.server.thaw()
    for database in opened:
        await database.dispose()
