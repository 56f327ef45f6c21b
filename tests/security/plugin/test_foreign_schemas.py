"""The three tools on schemas that are not this project's: each gap named, by each tool.

``audit`` and ``security-check`` run through ``tenancy.cli.command.main``; the
plugin through pytester. The options point them at the ``shop`` schema's
integer ``tenant_id`` and ``app.current_tenant`` setting (or, for the accounts
schema, a text column bound by a ``set_config`` template).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy.engine import URL

from tenancy.cli.command import main
from tests.security.plugin.foreign_schemas import Roles, accounts, pool, pool_gaps
from tests.security.plugin.gapped_database import execute, janitor, plugin_args

pytestmark = pytest.mark.security


@dataclass(frozen=True)
class Target:
    """A database of a foreign schema and the roles made for it."""

    url: URL
    roles: Roles


def _database(admin_url: URL, kind: str, build: Callable[[Roles], list[str]]) -> Iterator[Target]:
    # Roles are cluster-wide, so each database gets its own: one schema's grants
    # (the gapped one makes the owner assumable) must not leak into another's.
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(app=f"shop_app_{suffix}", owner=f"shop_owner_{suffix}")
    name = f"tenancy_foreign_{kind}_{suffix}"
    execute(admin_url, *roles.create())
    try:
        with janitor(admin_url, name):
            url = admin_url.set(database=name)
            execute(url, *build(roles))
            yield Target(url, roles)
    finally:
        execute(admin_url, *roles.drop())


@pytest.fixture(scope="module")
def clean_pool(admin_url: URL) -> Iterator[Target]:
    """The sound pool-model schema."""
    yield from _database(admin_url, "clean", pool)


@pytest.fixture(scope="module")
def gapped_pool(admin_url: URL) -> Iterator[Target]:
    """The pool-model schema with one weakness per table (and the owner assumable)."""
    yield from _database(admin_url, "gapped", lambda roles: [*pool(roles), *pool_gaps(roles)])


@pytest.fixture(scope="module")
def account_schema(admin_url: URL) -> Iterator[Target]:
    """The sound text-keyed schema bound through a JWT claim setting."""
    yield from _database(admin_url, "accounts", accounts)


@pytest.fixture
def empty(admin_url: URL) -> Iterator[URL]:
    """A new database with nothing in it."""
    for target in _database(admin_url, "empty", lambda roles: []):
        yield target.url


def pool_options(roles: Roles) -> list[str]:
    """Return the command-line options describing the pool-model schema."""
    return [
        "--schema", "shop",
        "--app-role", roles.app,
        "--tenant-column", "tenant_id",
        "--tenant-setting", "app.current_tenant",
        "--random-key", "shop.invites.token",
    ]  # fmt: skip


def account_options(roles: Roles) -> list[str]:
    """Return the command-line options describing the accounts schema."""
    return [
        "--app-role", roles.app,
        "--tenant-column", "account",
        "--tenant-binding", "SELECT set_config('request.jwt.claim.sub', {tenant}, true)",
    ]  # fmt: skip


def tool(
    capsys: pytest.CaptureFixture[str], command: str, url: URL, options: list[str]
) -> tuple[int, str]:
    """Run ``tenancy <command>`` on ``url``; return its exit code and its output."""
    target = url.render_as_string(hide_password=False)
    code = main([command, "--database-url", target, *options])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# The gaps of pool_gaps as (subject, code): what the audit must print.
AUDIT_FINDINGS = {
    ("shop.bypassed", "permissive-beyond-tenant"),
    ("shop.bypassed", "no-restrictive-guard"),
    ("shop.ranged", "permissive-beyond-tenant"),
    ("shop.events_all", "partition-rls-disabled"),
    ("shop.audit_log", "rls-disabled"),
    ("shop.audit_log", "app-dml-without-rls"),
    ("function shop.order_total(wanted integer)", "definer-reads-tenant-table"),
    ("shop.refunds", "fk-not-tenant-scoped"),
    ("shop.false_guard", "no-restrictive-guard"),
    ("setting app.current_tenant", "tenant-setting-default"),
}
# The same gaps as security-check and the plugin name them (subject::check).
CHECK_FINDINGS = {
    "shop.bypassed::permissive_is_tenant_only",
    "shop.bypassed::restrictive_guard",
    "shop.ranged::permissive_is_tenant_only",
    "shop.events_all::rls_enabled",
    "shop.events_all::cross_tenant_select",
    "shop.audit_log::rls_enabled",
    "shop.audit_log::app_dml_without_rls",
    "shop.audit_log::cross_tenant_select",
    "function shop.order_total(wanted integer)::definer_reads_tenant_table",
    "shop.refunds::foreign_keys_tenant_scoped",
    "shop.false_guard::guard_is_tenant_predicate",
    "setting app.current_tenant::tenant_setting_default",
}


def test_audit_passes_the_sound_pool_schema(
    capsys: pytest.CaptureFixture[str], clean_pool: Target
) -> None:
    code, output = tool(capsys, "audit", clean_pool.url, pool_options(clean_pool.roles))
    assert code == 0, output


def test_audit_names_each_gap_of_the_gapped_pool_schema(
    capsys: pytest.CaptureFixture[str], gapped_pool: Target
) -> None:
    code, output = tool(capsys, "audit", gapped_pool.url, pool_options(gapped_pool.roles))
    assert code == 3
    for subject, code_name in AUDIT_FINDINGS:
        assert f"  - {subject} [{code_name}]: " in output, (subject, code_name)


def test_audit_names_the_owner_the_app_role_can_become(
    capsys: pytest.CaptureFixture[str], gapped_pool: Target
) -> None:
    _, output = tool(capsys, "audit", gapped_pool.url, pool_options(gapped_pool.roles))
    roles = gapped_pool.roles
    assert f"  - role {roles.app} [app-can-become-owner]: can SET ROLE to {roles.owner}" in output


def test_audit_names_a_tenant_column_of_another_type_than_declared(
    capsys: pytest.CaptureFixture[str], clean_pool: Target
) -> None:
    options = [*pool_options(clean_pool.roles), "--tenant-type", "uuid"]
    code, output = tool(capsys, "audit", clean_pool.url, options)
    assert code == 3
    assert "  - shop.orders [tenant-type-mismatch]: tenant_id is integer" in output


def test_audit_reports_the_binding_mode(
    capsys: pytest.CaptureFixture[str], clean_pool: Target
) -> None:
    _, output = tool(capsys, "audit", clean_pool.url, pool_options(clean_pool.roles))
    assert "tenant binding: setting app.current_tenant (safe only if bound with SET LOCAL" in output


def test_security_check_passes_the_sound_pool_schema(
    capsys: pytest.CaptureFixture[str], clean_pool: Target
) -> None:
    code, output = tool(capsys, "security-check", clean_pool.url, pool_options(clean_pool.roles))
    assert code == 0, output
    assert "checked shop.orders: " in output


def test_security_check_names_each_gap_of_the_gapped_pool_schema(
    capsys: pytest.CaptureFixture[str], gapped_pool: Target
) -> None:
    code, output = tool(capsys, "security-check", gapped_pool.url, pool_options(gapped_pool.roles))
    failed = {
        line.split("] ", 1)[1].split(": ", 1)[0]
        for line in output.splitlines()
        if line.startswith("FAILED")
    }
    assert code == 3
    assert failed >= CHECK_FINDINGS
    assert f"{gapped_pool.roles.app}::owns_nothing" in failed


def test_plugin_passes_the_sound_pool_schema(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, clean_pool: Target
) -> None:
    result = run_plugin(pytester, monkeypatch, clean_pool)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["checked shop.orders: * cases, 0 failed"])


def test_plugin_names_each_gap_of_the_gapped_pool_schema(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, gapped_pool: Target
) -> None:
    result = run_plugin(pytester, monkeypatch, gapped_pool)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    failed = {
        line.split(" ", 1)[1].split(" - ", 1)[0].removeprefix("tenancy-isolation::")
        for line in result.stdout.lines
        if line.startswith("FAILED ")
    }
    assert failed >= CHECK_FINDINGS


def run_plugin(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: Target
) -> pytest.RunResult:
    """Run the plugin in a project whose ``[tool.tenancy]`` describes the pool schema."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyprojecttoml(
        f"""
        [tool.tenancy]
        schemas = ["shop"]
        app-role = "{target.roles.app}"
        tenant-column = "tenant_id"
        tenant-setting = "app.current_tenant"
        random-keys = ["shop.invites.token"]
        """
    )
    return pytester.runpytest_inprocess(
        *plugin_args("--tenancy-isolation", "--tenancy-database-url", target.url, "-rf")
    )


@pytest.mark.parametrize("command", ["audit", "security-check"])
def test_a_text_key_bound_by_a_template_passes_when_sound(
    capsys: pytest.CaptureFixture[str], account_schema: Target, command: str
) -> None:
    code, output = tool(capsys, command, account_schema.url, account_options(account_schema.roles))
    assert code == 0, output


@pytest.mark.parametrize("command", ["audit", "security-check"])
def test_an_empty_database_cannot_be_checked(
    capsys: pytest.CaptureFixture[str], empty: URL, command: str
) -> None:
    code, output = tool(capsys, command, empty, [])
    assert code == 2, output
    assert "could not run" in output


def test_the_plugin_fails_on_an_empty_database(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, empty: URL
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_inprocess(
        *plugin_args("--tenancy-isolation", "--tenancy-database-url", empty, "-rf")
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*database::nothing_checked*no tenant table*"])


@pytest.mark.parametrize("command", ["audit", "security-check"])
def test_an_unknown_app_role_cannot_be_checked(
    capsys: pytest.CaptureFixture[str], clean_pool: Target, command: str
) -> None:
    options = [*pool_options(clean_pool.roles), "--app-role", "no_such_role_here"]
    code, output = tool(capsys, command, clean_pool.url, options)
    assert code == 2, output


@pytest.fixture
def busy(clean_pool: Target) -> Iterator[None]:
    """Another session holding a transaction open in the clean pool database."""
    url = clean_pool.url
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    ) as connection:
        connection.execute(b"SELECT count(*) FROM shop.orders")
        yield
        connection.rollback()


@pytest.mark.usefixtures("busy")
def test_security_check_refuses_to_probe_a_busy_database(
    capsys: pytest.CaptureFixture[str], clean_pool: Target
) -> None:
    code, output = tool(capsys, "security-check", clean_pool.url, pool_options(clean_pool.roles))
    assert code == 2
    assert "1 other session(s) are working in this database" in output


@pytest.mark.usefixtures("busy")
def test_security_check_probes_a_busy_database_when_allowed(
    capsys: pytest.CaptureFixture[str], clean_pool: Target
) -> None:
    options = [*pool_options(clean_pool.roles), "--allow-busy"]
    code, output = tool(capsys, "security-check", clean_pool.url, options)
    assert code == 0, output
