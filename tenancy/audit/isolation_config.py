"""What the isolation tools need to know about a service's schema, in one place.

``tenancy audit``, ``tenancy security-check`` and the pytest plugin read the same
``IsolationConfig``: from ``[tool.tenancy]`` in the service's ``pyproject.toml``,
then overridden by command-line options. This project's own names (``org_id``,
``app.org_id``, ``tenancy_app``) are the defaults, never assumptions::

    [tool.tenancy]
    schemas = ["app"]                  # default: every non-system schema
    app-role = "app_user"
    tenant-column = "tenant_id"
    tenant-columns = { "app.accounts" = "id" }   # per-table override
    tenant-type = "integer"            # uuid | integer | text (default: the column's own)
    tenant-setting = "app.current_tenant"
    # or: tenant-binding = "SET LOCAL ROLE tenant_{tenant}"
    # Membership-based: the binding names a user, who sees the tenants of their rows here.
    # membership = "app.memberships(user_id, account_id)"
    global-tables = ["app.plans"]
    random-keys = ["app.invites.token"]
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tenancy.errors import ConfigurationError
from tenancy.schema.role_names import APP_ROLE

TENANT_TYPES = ("uuid", "integer", "text")
#: ``{tenant}`` in a binding template is replaced by the tenant as a quoted literal.
PLACEHOLDER = "{tenant}"
#: ``schema.table(user_column, tenant_column)``: where a user's tenants are listed.
_MEMBERSHIP = re.compile(r"^\s*([\w$]+)\.([\w$]+)\s*\(\s*([\w$]+)\s*,\s*([\w$]+)\s*\)\s*$")
# A template that binds through set_config names the setting the policies read.
_SET_CONFIG = re.compile(r"set_config\(\s*'([^']+)'\s*,\s*\{tenant\}", re.IGNORECASE)


@dataclass(frozen=True)
class IsolationConfig:
    """The schema facts the audit, ``security-check`` and the plugin share.

    Table names may be qualified (``schema.table``) or bare (any schema).
    ``random_keys`` are ``table.column`` (or ``schema.table.column``): a unique key
    made only of them is a random global token, not an oracle across tenants.
    """

    schemas: tuple[str, ...] = ()
    app_role: str = APP_ROLE
    tenant_column: str = "org_id"
    tenant_columns: Mapping[str, str] = field(default_factory=dict)
    tenant_type: str | None = None
    tenant_setting: str = "app.org_id"
    tenant_binding: str | None = None
    global_tables: frozenset[str] = frozenset()
    random_keys: frozenset[str] = frozenset()
    #: Definer functions reviewed to return only their caller's tenant's rows.
    reviewed_definers: frozenset[str] = frozenset()
    #: Membership-based schemes: ``schema.table(user_column, tenant_column)``. The
    #: binding then makes a *user* current, and the probe gives each of its tenants a
    #: user who is a member of it there.
    membership: str | None = None

    def __post_init__(self) -> None:
        if self.tenant_type is not None and self.tenant_type not in TENANT_TYPES:
            raise ConfigurationError(
                f"tenant type {self.tenant_type!r} is not one of {', '.join(TENANT_TYPES)}"
            )
        if self.tenant_binding is not None and PLACEHOLDER not in self.tenant_binding:
            raise ConfigurationError(f"tenant binding must contain {PLACEHOLDER}")
        if self.membership is not None and _MEMBERSHIP.match(self.membership) is None:
            raise ConfigurationError(
                f"membership {self.membership!r} is not schema.table(user_column, tenant_column)"
            )

    @property
    def membership_table(self) -> tuple[str, str, str, str] | None:
        """Return ``(schema, table, user_column, tenant_column)`` of ``membership``, if set."""
        found = _MEMBERSHIP.match(self.membership) if self.membership is not None else None
        if found is None:
            return None
        schema, table, user, tenant = found.groups()
        return schema, table, user, tenant

    def column_for(self, schema: str, table: str) -> str:
        """Return the tenant column of ``schema.table`` (its override, else the default)."""
        return self.tenant_columns.get(
            f"{schema}.{table}", self.tenant_columns.get(table, self.tenant_column)
        )

    def is_global(self, schema: str, table: str) -> bool:
        """Return whether ``schema.table`` was declared global or shared (no tenant column)."""
        return f"{schema}.{table}" in self.global_tables or table in self.global_tables

    def is_random_key(self, schema: str, table: str, column: str) -> bool:
        """Return whether ``column`` of ``schema.table`` was declared a random global key."""
        return bool({f"{schema}.{table}.{column}", f"{table}.{column}"} & self.random_keys)

    @property
    def policy_setting(self) -> str | None:
        """Return the setting the tenant policies read, if the binding names one.

        ``None`` for a binding that is not a setting (``SET LOCAL ROLE tenant_{tenant}``):
        the policies' expected predicate is then unknown.
        """
        if self.tenant_binding is None:
            return self.tenant_setting
        found = _SET_CONFIG.search(self.tenant_binding)
        return found.group(1) if found else None

    @property
    def binding_mode(self) -> str:
        """Describe how a tenant is bound, for the reports."""
        if self.tenant_binding is not None:
            return f"template: {self.tenant_binding}"
        return f"setting {self.tenant_setting} (safe only if bound with SET LOCAL per transaction)"

    def with_options(self, **options: Any) -> IsolationConfig:
        """Return a copy with the options that were given (``None`` or empty: keep)."""
        given = {k: v for k, v in options.items() if v is not None and v != () and v != []}
        for name in ("schemas",):
            if name in given:
                given[name] = tuple(given[name])
        for name in ("global_tables", "random_keys", "reviewed_definers"):
            if name in given:
                given[name] = getattr(self, name) | frozenset(given[name])
        if "tenant_setting" in given and "tenant_binding" not in given:
            given["tenant_binding"] = None  # a setting given here replaces a binding
        return replace(self, **given)


def load_config(directory: Path | None = None) -> IsolationConfig:
    """Return the configuration of ``[tool.tenancy]`` in ``directory``'s ``pyproject.toml``.

    Without the file or the table, the defaults.

    Raises:
        ConfigurationError: the table holds an unknown key or a value of the wrong type.
    """
    path = (directory or Path.cwd()) / "pyproject.toml"
    if not path.is_file():
        return IsolationConfig()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("tenancy", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    return config_from_table(table, source=str(path))


def config_from_table(table: Mapping[str, Any], *, source: str) -> IsolationConfig:
    """Return the configuration a ``[tool.tenancy]`` table describes.

    Raises:
        ConfigurationError: an unknown key or a value of the wrong type.
    """
    kinds: dict[str, type] = {
        "schemas": list,
        "app-role": str,
        "tenant-column": str,
        "tenant-columns": dict,
        "tenant-type": str,
        "tenant-setting": str,
        "tenant-binding": str,
        "global-tables": list,
        "random-keys": list,
        "reviewed-definers": list,
        "membership": str,
    }
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = kinds.get(key)
        if kind is None:
            raise ConfigurationError(f"{source}: unknown key [tool.tenancy] {key}")
        if not isinstance(value, kind):
            raise ConfigurationError(f"{source}: [tool.tenancy] {key} must be a {kind.__name__}")
        values[key.replace("-", "_")] = value
    for name in ("schemas",):
        if name in values:
            values[name] = tuple(values[name])
    for name in ("global_tables", "random_keys", "reviewed_definers"):
        if name in values:
            values[name] = frozenset(values[name])
    return IsolationConfig(**values)
