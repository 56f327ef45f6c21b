"""Fixtures: a throwaway database per run, migrated for real, used as the app role."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL, make_url

from repositories import PlatformDatabase
from repositories.models import Organization
from tenancy import Database, TenancySettings
from tenancy.schema.migration import upgrade
from tenancy.settings import APP_ROLE

PG_HOST = os.environ.get("TENANCY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TENANCY_TEST_PG_PORT", "5432"))
PG_SUPERUSER = os.environ.get("TENANCY_TEST_PG_USER", "postgres")


def pytest_report_header() -> str:
    """Name the SQLAlchemy and asyncpg the run uses (make test-floor runs the declared floor)."""
    import asyncpg
    import sqlalchemy

    return f"sqlalchemy {sqlalchemy.__version__}, asyncpg {asyncpg.__version__}"


#: What the session's event loop reported to its exception handler, not yet claimed by a test.
_LOOP_REPORTS: list[dict[str, Any]] = []


@pytest.fixture(scope="session", autouse=True)
async def _loop_reports_collected() -> AsyncIterator[None]:
    """Collect what the session's event loop would only have logged."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: _LOOP_REPORTS.append(context))
    yield
    loop.set_exception_handler(previous)


@pytest.fixture(autouse=True)
def loop_reports_nothing(_loop_reports_collected: None) -> Iterator[None]:
    """Fail a test during which the event loop reported an error nobody handled.

    asyncio only logs an exception no one retrieved, or a task destroyed while
    pending; in a service that is an ERROR line in its logs on every occurrence.
    """
    _LOOP_REPORTS.clear()
    yield
    reports = [_describe(context) for context in _LOOP_REPORTS]
    _LOOP_REPORTS.clear()
    assert not reports, "the event loop reported:\n" + "\n".join(reports)


@pytest.fixture
def loop_reports(loop_reports_nothing: None) -> list[dict[str, Any]]:
    """What the session's event loop has reported so far during this test (live)."""
    return _LOOP_REPORTS


def _describe(context: dict[str, Any]) -> str:
    exception = context.get("exception")
    detail = f": {type(exception).__name__}: {exception}" if exception is not None else ""
    return f"{context.get('message')}{detail}"


def superuser_url(dbname: str) -> URL:
    """Return the superuser URL of database ``dbname`` on the test server."""
    return make_url(f"postgresql+asyncpg://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{dbname}")


@pytest.fixture(scope="session")
def database_name() -> Iterator[str]:
    """Create a fresh database for this test run and drop it afterwards."""
    name = f"tenancy_test_{uuid.uuid4().hex[:12]}"
    janitor = DatabaseJanitor(user=PG_SUPERUSER, host=PG_HOST, port=PG_PORT, dbname=name)
    with janitor:
        yield name


@pytest.fixture(scope="session")
def admin_url(database_name: str) -> URL:
    """Superuser URL of the migrated test database (setup only; never for isolation checks)."""
    url = superuser_url(database_name)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def settings(admin_url: URL) -> TenancySettings:
    """Settings pointing at the test database as the application role."""
    admin = admin_url.render_as_string(hide_password=False)
    base = TenancySettings(admin_database_url=admin, pool_size=5, max_overflow=5)
    app_url = base.url_for_role(APP_ROLE).render_as_string(hide_password=False)
    return base.model_copy(update={"database_url": app_url})


@pytest.fixture(scope="session")
async def db(settings: TenancySettings) -> AsyncIterator[Database]:
    """A ``Database`` connected as ``tenancy_app`` (verified non-bypassing)."""
    database = await PlatformDatabase.connect(settings)
    yield database
    await database.dispose()


async def create_organization(db: Database, name: str = "org") -> uuid.UUID:
    """Create an organization (as its own tenant) and return its id."""
    org_id = uuid.uuid4()
    async with db.session(org_id) as session:
        session.add(Organization(id=org_id, name=name))
    return org_id


@pytest.fixture
async def org_a(db: Database) -> uuid.UUID:
    """A fresh organization."""
    return await create_organization(db, "A")


@pytest.fixture
async def org_b(db: Database) -> uuid.UUID:
    """Another fresh organization."""
    return await create_organization(db, "B")
