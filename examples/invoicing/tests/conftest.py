"""A throwaway database migrated by the service's own `alembic upgrade head`.

Created before collection (``pytest_configure``) because the shipped isolation
plugin, enabled in ``pyproject.toml``, discovers the tenant tables while
collecting; dropped at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from unit_of_work import InvoicingDatabase

from repositories.models import Customer, User
from tenancy import TenancySettings

SERVICE_DIR = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("INVOICING_SERVER_URL", "postgresql://postgres@127.0.0.1:5432")
BIN = Path(sys.executable).parent


def database_url(name: str, user: str = "postgres") -> str:
    """Return the URL of database ``name`` on the test server as ``user``."""
    host = SERVER_URL.split("@", 1)[1]
    return f"postgresql://{user}@{host}/{name}"


async def create_database(name: str, owner: str | None = None) -> None:
    """Create database ``name`` (owned by ``owner`` if given)."""
    connection = await asyncpg.connect(database_url("postgres"))
    try:
        owned = f" OWNER {owner}" if owner else ""
        await connection.execute(f'CREATE DATABASE "{name}"{owned}')
    finally:
        await connection.close()


async def drop_database(name: str) -> None:
    """Drop database ``name``, closing its connections."""
    connection = await asyncpg.connect(database_url("postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run(*argv: str, url: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command of this virtualenv from the service's folder, as its operators would."""
    env = {**os.environ, "TENANCY_DATABASE_URL": url}
    env.pop("TENANCY_ADMIN_DATABASE_URL", None)
    result = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=SERVICE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Create and migrate the run's database; aim the isolation plugin at it."""
    name = f"invoicing_{secrets.token_hex(4)}"
    asyncio.run(create_database(name))
    url = database_url(name)
    # A superuser URL: the first migration of a cluster also creates the roles.
    run("alembic", "upgrade", "head", url=url)
    config.stash[DATABASE_NAME] = name
    os.environ["TENANCY_ISOLATION_DATABASE_URL"] = url


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop the run's database."""
    name = config.stash.get(DATABASE_NAME, None)
    if name is not None:
        asyncio.run(drop_database(name))


DATABASE_NAME = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def superuser_url(pytestconfig: pytest.Config) -> str:
    """The migrated database, as the superuser."""
    return database_url(pytestconfig.stash[DATABASE_NAME])


@pytest.fixture(scope="session")
def settings(superuser_url: str) -> TenancySettings:
    """Settings of the application: the app role's URL, derived from the superuser's."""
    base = TenancySettings(admin_database_url=superuser_url)
    app_url = base.url_for_role(base.role_names().app).render_as_string(hide_password=False)
    return base.model_copy(update={"database_url": app_url})


@pytest.fixture(scope="session")
async def db(settings: TenancySettings) -> AsyncIterator[InvoicingDatabase]:
    """The service's Database, connected as the app role (never a superuser)."""
    database = await InvoicingDatabase.connect(settings)
    yield database
    await database.dispose()


@dataclass(frozen=True)
class Tenant:
    """An organization with its owner and one customer."""

    org_id: uuid.UUID
    owner_id: uuid.UUID
    customer_id: uuid.UUID


async def create_tenant(db: InvoicingDatabase) -> Tenant:
    """Found an organization (owner and customer) through the library's repositories."""
    org_id, tag = uuid.uuid4(), uuid.uuid4().hex[:12]
    owner = User(email=f"owner-{tag}@invoicing.example", username=f"owner_{tag}")
    async with db.unit_of_work(org_id) as uow:
        await uow.organizations.create(f"org {tag}", owner=owner)
        customer = await uow.customers.add(
            Customer(name="Customer", email=f"billing-{tag}@customer.example")
        )
        await uow.commit()
    return Tenant(org_id=org_id, owner_id=owner.id, customer_id=customer.id)


@pytest.fixture
async def tenant_a(db: InvoicingDatabase) -> Tenant:
    """One organization."""
    return await create_tenant(db)


@pytest.fixture
async def tenant_b(db: InvoicingDatabase) -> Tenant:
    """Another organization."""
    return await create_tenant(db)
