"""The names of the five database roles, configurable so that a service can own its roles.

Migrations, grants, the role set-up, the URL derivation, the start-up self-check
and the audit all read the names from one ``RoleNames``, built from
``TenancySettings`` (``TENANCY_*_ROLE``). The defaults are the ``tenancy_*`` names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

OWNER_ROLE = "tenancy_owner"
APP_ROLE = "tenancy_app"
RELAY_ROLE = "tenancy_relay"
RESOLVER_ROLE = "tenancy_resolver"
CHAIN_ROLE = "tenancy_chain"

#: An unquoted lower-case Postgres identifier of at most 63 bytes. Names are
#: written into DDL (GRANT, ALTER ROLE, SET ROLE) where no bind parameter is
#: allowed; they are quoted there too, but a plain identifier also keeps them
#: spelled the same way in the catalog, the audit and every log line.
ROLE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
_ROLE_NAME = re.compile(ROLE_NAME_PATTERN)


@dataclass(frozen=True)
class QuotedRoles:
    """The role names quoted as SQL identifiers, ready for DDL."""

    owner: str
    app: str
    relay: str
    resolver: str
    chain: str


@dataclass(frozen=True)
class RoleNames:
    """The role names one deployment uses, by what each role is for.

    Raises:
        ValueError: a name is not a plain lower-case identifier, or two are equal.
    """

    owner: str = OWNER_ROLE
    app: str = APP_ROLE
    relay: str = RELAY_ROLE
    resolver: str = RESOLVER_ROLE
    chain: str = CHAIN_ROLE

    def __post_init__(self) -> None:
        names = [getattr(self, f.name) for f in fields(self)]
        for name in names:
            if not _ROLE_NAME.match(name):
                raise ValueError(
                    f"invalid role name {name!r}: use lower-case letters, digits and _"
                )
        if len(set(names)) != len(names):
            # One role in two parts would merge grants meant to stay apart.
            raise ValueError(f"the five role names must differ, got {names}")

    def quoted(self) -> QuotedRoles:
        """Return the names quoted as SQL identifiers, for DDL that takes no parameters."""
        return QuotedRoles(
            **{f.name: quote_identifier(getattr(self, f.name)) for f in fields(self)}
        )

    def configured(self, role: str) -> str:
        """Return the configured name of ``role``, a configured or a default name.

        A default name (``tenancy_chain``) stands for the role of that kind, so
        code written against the defaults reaches the configured role.
        """
        defaults = RoleNames()
        for field in fields(self):
            if role in (getattr(self, field.name), getattr(defaults, field.name)):
                return str(getattr(self, field.name))
        raise ValueError(f"unknown role {role!r}")


def quote_identifier(name: str) -> str:
    """Return ``name`` double-quoted as a SQL identifier (for DDL, which takes no parameters)."""
    # Always double-quoted, as Postgres's quote_ident would for a reserved word; the
    # pattern admits no double quote, so no name can close the quotes early.
    return '"' + name.replace('"', '""') + '"'
