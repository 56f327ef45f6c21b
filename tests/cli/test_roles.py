"""Configurable role names and passwords set only when given (issue 12, item 6).

Each test that creates roles uses names of its own, so the cluster's ``tenancy_*``
roles and their passwords are never touched; the roles are dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from repositories import PlatformDatabase
from tenancy import TenancySettings
from tenancy.audit.database_audit import audit_database
from tenancy.cli.command import EXIT_ERROR, EXIT_OK
from tests.cli.databases import janitor, new_name, run_cli

KINDS = ("owner", "app", "relay", "resolver", "chain")


@pytest.fixture
def role_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Role names of this test's own, set as ``TENANCY_*_ROLE`` variables."""
    prefix = f"tcli_{uuid.uuid4().hex[:8]}"
    names = {kind: f"{prefix}_{kind}" for kind in KINDS}
    for kind, name in names.items():
        monkeypatch.setenv(f"TENANCY_{kind.upper()}_ROLE", name)
    for kind in ("owner", "app", "relay", "chain"):
        monkeypatch.delenv(f"TENANCY_{kind.upper()}_PASSWORD", raising=False)
    return names


@pytest.fixture
async def own_roles_db(
    admin_url: URL, role_env: dict[str, str]
) -> AsyncIterator[tuple[URL, dict[str, str]]]:
    """An empty database, then (after the test) its roles dropped with it."""
    name = new_name("roles")
    with janitor(admin_url, name):
        yield admin_url.set(database=name), role_env
    await _drop_roles(admin_url, role_env.values())


@pytest.fixture
def cleared_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``TENANCY_*_PASSWORD`` variable leaks in from the environment."""
    for kind in ("owner", "app", "relay", "chain"):
        monkeypatch.delenv(f"TENANCY_{kind.upper()}_PASSWORD", raising=False)
    return


async def _drop_roles(server: URL, names: Iterable[str]) -> None:
    engine = create_async_engine(server, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            for role in names:
                await connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await engine.dispose()


async def _password_of(server: URL, role: str) -> str | None:
    engine = create_async_engine(server, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(
                text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"), {"r": role}
            )
            value: str | None = found.scalar_one()
            return value
    finally:
        await engine.dispose()


def _url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


async def test_migrate_creates_configured_roles_without_passwords(
    own_roles_db: tuple[URL, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, names = own_roles_db

    assert await run_cli("migrate", "--database-url", _url(url)) == EXIT_OK

    out = capsys.readouterr().out
    assert f"created role {names['app']} (no password set)" in out
    assert await _password_of(url, names["app"]) is None


async def test_migrate_prints_each_revision_it_applies(
    own_roles_db: tuple[URL, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = own_roles_db

    await run_cli("migrate", "--database-url", _url(url))

    out = capsys.readouterr().out
    assert "applied tenancy_0001: Schema" in out
    assert "applied tenancy_0009" in out


async def test_migrate_again_leaves_existing_passwords_unchanged(
    own_roles_db: tuple[URL, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, names = own_roles_db
    monkeypatch.setenv("TENANCY_APP_PASSWORD", "first-secret")
    await run_cli("migrate", "--database-url", _url(url))
    stored = await _password_of(url, names["app"])
    monkeypatch.delenv("TENANCY_APP_PASSWORD")
    capsys.readouterr()

    assert await run_cli("migrate", "--database-url", _url(url)) == EXIT_OK

    assert f"role {names['app']} exists, password unchanged" in capsys.readouterr().out
    assert stored is not None
    assert await _password_of(url, names["app"]) == stored


async def test_migrate_sets_a_password_only_when_given(
    own_roles_db: tuple[URL, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, names = own_roles_db
    await run_cli("migrate", "--database-url", _url(url))
    monkeypatch.setenv("TENANCY_RELAY_PASSWORD", "relay-secret")
    capsys.readouterr()

    await run_cli("migrate", "--database-url", _url(url))

    assert f"password of {names['relay']} set" in capsys.readouterr().out
    assert await _password_of(url, names["relay"]) is not None


async def test_grants_go_to_the_configured_roles_and_the_audit_passes(
    own_roles_db: tuple[URL, dict[str, str]],
) -> None:
    url, names = own_roles_db
    await run_cli("migrate", "--database-url", _url(url))
    settings = TenancySettings(admin_database_url=_url(url))

    report = await audit_database(settings)

    assert report.ok, report.gaps
    assert report.app_role is not None
    assert report.app_role.name == names["app"]


async def test_the_app_self_check_expects_the_configured_app_role(
    own_roles_db: tuple[URL, dict[str, str]],
) -> None:
    url, names = own_roles_db
    await run_cli("migrate", "--database-url", _url(url))
    base = TenancySettings(admin_database_url=_url(url))
    app_url = base.url_for_role(names["app"])
    settings = base.model_copy(update={"database_url": _url(app_url)})

    db = await PlatformDatabase.connect(settings)
    try:
        async with db.engine.connect() as connection:
            user = (await connection.execute(text("SELECT current_user"))).scalar_one()
    finally:
        await db.dispose()

    assert user == names["app"]


@pytest.mark.usefixtures("cleared_passwords")
def test_a_derived_role_url_carries_no_password_unless_one_is_set() -> None:
    settings = TenancySettings(admin_database_url="postgresql://postgres:pw@db/x")

    assert settings.url_for_role("tenancy_app").password is None


def test_a_default_role_name_stands_for_the_configured_role() -> None:
    settings = TenancySettings(admin_database_url="postgresql://postgres@db/x", app_role="acme_app")

    assert settings.url_for_role("tenancy_app").username == "acme_app"


def test_a_role_name_that_is_not_a_plain_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="app_role"):
        TenancySettings(app_role='x"; DROP ROLE postgres; --')


async def test_migrate_with_the_app_role_url_asks_for_an_owner_url(
    scratch_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    app_url = scratch_url.set(username="tenancy_app", password=None)

    assert await run_cli("migrate", "--database-url", _url(app_url)) == EXIT_ERROR

    assert "need an owner (tenancy_owner) or superuser URL" in capsys.readouterr().err
