"""Fixtures of the plugin suite: databases of its own, one sound and one broken on purpose.

Both are clones of a database migrated once per run, so the plugin never
runs against the database the rest of the suite is using.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from tenancy.schema.migration import upgrade
from tests.security.plugin.gapped_database import BREAKS, execute, janitor


@pytest.fixture(scope="session")
def migrated_template(admin_url: URL) -> Iterator[str]:
    """A database migrated to head, used only as a template to clone."""
    name = f"tenancy_sec_template_{uuid.uuid4().hex[:10]}"
    with janitor(admin_url, name):
        upgrade(admin_url.set(database=name))
        yield name


@pytest.fixture(scope="session")
def sound_url(admin_url: URL, migrated_template: str) -> Iterator[URL]:
    """Superuser URL of a migrated database, as ``tenancy migrate`` leaves it."""
    name = f"tenancy_sec_sound_{uuid.uuid4().hex[:10]}"
    with janitor(admin_url, name, template=migrated_template):
        yield admin_url.set(database=name)


@pytest.fixture(scope="session")
def broken_url(admin_url: URL, migrated_template: str) -> Iterator[URL]:
    """Superuser URL of a migrated database with the gaps of ``BREAKS`` made in it."""
    name = f"tenancy_sec_broken_{uuid.uuid4().hex[:10]}"
    with janitor(admin_url, name, template=migrated_template):
        url = admin_url.set(database=name)
        execute(url, *BREAKS)
        yield url


@pytest.fixture(scope="session")
def bypassing_role(broken_url: URL) -> Iterator[str]:
    """A BYPASSRLS role with the app role's grants, in the broken database only."""
    role = f"sec_bypass_{uuid.uuid4().hex[:8]}"
    execute(
        broken_url,
        f"CREATE ROLE {role} NOLOGIN BYPASSRLS",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    )
    yield role
    execute(broken_url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


@pytest.fixture
def service(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An empty project whose pytest loads no plugin unless told to (``plugin_args``)."""
    # Entry-point plugins re-imported (and assertion-rewritten) by every in-process
    # run would cost seconds each, and are no part of what is tested here.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("TENANCY_ISOLATION_DATABASE_URL", "TENANCY_ADMIN_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return pytester
