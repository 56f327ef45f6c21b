"""``IsolationConfig``: read from ``[tool.tenancy]``, overridden by the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenancy.audit.isolation_config import IsolationConfig, config_from_table, load_config
from tenancy.cli.command import build_parser
from tenancy.cli.isolation_options import isolation_config
from tenancy.errors import ConfigurationError

PYPROJECT = """
[tool.tenancy]
schemas = ["shop"]
app-role = "shop_app"
tenant-column = "tenant_id"
tenant-columns = { "shop.tenants" = "id" }
tenant-type = "integer"
tenant-setting = "app.current_tenant"
global-tables = ["shop.plans"]
random-keys = ["shop.invites.token"]
"""


def write(directory: Path, text: str) -> Path:
    """Write ``text`` as ``directory``'s pyproject.toml and return the directory."""
    (directory / "pyproject.toml").write_text(text, encoding="utf-8")
    return directory


def parsed(*argv: str, directory: Path) -> IsolationConfig:
    """Return the configuration ``tenancy audit ARGV`` would use in ``directory``."""
    args = build_parser().parse_args(["audit", "--database-url", "postgresql:///x", *argv])
    return isolation_config(args, directory)


def test_without_a_pyproject_the_defaults_are_this_projects_names(tmp_path: Path) -> None:
    config = load_config(tmp_path)

    assert (config.schemas, config.tenant_column, config.tenant_setting) == (
        (),
        "org_id",
        "app.org_id",
    )


def test_the_tool_tenancy_table_describes_another_schema(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, PYPROJECT))

    assert config.schemas == ("shop",)
    assert config.app_role == "shop_app"
    assert config.column_for("shop", "orders") == "tenant_id"
    assert config.column_for("shop", "tenants") == "id"
    assert config.is_global("shop", "plans")
    assert config.is_random_key("shop", "invites", "token")


def test_command_line_options_override_the_pyproject(tmp_path: Path) -> None:
    config = parsed(
        "--tenant-column", "account", "--schema", "crm", directory=write(tmp_path, PYPROJECT)
    )

    assert (config.tenant_column, config.schemas) == ("account", ("crm",))
    assert config.app_role == "shop_app"


def test_a_global_table_option_adds_to_those_of_the_pyproject(tmp_path: Path) -> None:
    config = parsed("--global-table", "shop.regions", directory=write(tmp_path, PYPROJECT))

    assert config.global_tables == {"shop.plans", "shop.regions"}


def test_a_binding_template_names_the_setting_the_policies_read(tmp_path: Path) -> None:
    config = parsed(
        "--tenant-binding",
        "SELECT set_config('request.jwt.claim.sub', {tenant}, true)",
        directory=tmp_path,
    )

    assert config.policy_setting == "request.jwt.claim.sub"


def test_a_role_binding_leaves_the_expected_predicate_unknown(tmp_path: Path) -> None:
    config = parsed("--tenant-binding", "SET LOCAL ROLE tenant_{tenant}", directory=tmp_path)

    assert config.policy_setting is None


def test_a_plain_setting_binding_is_reported_as_safe_only_with_set_local() -> None:
    assert "safe only if bound with SET LOCAL" in IsolationConfig().binding_mode


def test_an_unknown_key_in_tool_tenancy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown key"):
        load_config(write(tmp_path, '[tool.tenancy]\ntenant-colum = "x"\n'))


def test_a_tenant_type_other_than_uuid_integer_text_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="tenant type"):
        IsolationConfig(tenant_type="bigserial")


def test_a_binding_without_the_tenant_placeholder_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="tenant"):
        IsolationConfig(tenant_binding="SET LOCAL ROLE tenant_a")


def test_a_malformed_table_tenant_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="TABLE=COLUMN"):
        parsed("--table-tenant-column", "orders", directory=tmp_path)


def test_a_membership_table_is_read_from_pyproject() -> None:
    config = config_from_table(
        {"membership": "basejump.account_user(user_id, account_id)"}, source="pyproject.toml"
    )

    assert config.membership_table == ("basejump", "account_user", "user_id", "account_id")


def test_a_malformed_membership_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"schema\.table"):
        IsolationConfig(membership="account_user user_id")
