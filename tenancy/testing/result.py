"""The vocabulary shared by the isolation checks, the pytest plugin and ``security-check``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

from sqlalchemy import Index, PrimaryKeyConstraint, UniqueConstraint

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.errors import ConfigurationError
from tenancy.extension import load_models
from tenancy.schema.declarative import Base

#: Categories, in the order summaries print them.
ROLE = "role"
CATALOG = "catalog"
ISOLATION = "isolation"
POLICY = "policy"
CATEGORIES: tuple[str, ...] = (ROLE, CATALOG, POLICY, ISOLATION)

#: How the probe holds its rows (``tenancy.testing.probe``): ``auto`` commits them
#: (and deletes them afterwards) on a Citus coordinator and rolls them back elsewhere.
FixtureMode = Literal["auto", "rolled-back", "committed"]


def library_global_tokens(tenant_column: str = "org_id") -> frozenset[str]:
    """Return the unique keys of this library's own tenant tables that omit the tenant.

    These are random global tokens (a payment link's public token, a wallet's
    address), declared so in the models of the installed packages (``tenancy.models``
    entry points); read from the models so that the list
    cannot drift from the schema.
    """
    load_models()
    names: set[str] = set()
    for table in Base.metadata.tables.values():
        if tenant_column not in table.c:
            continue
        # A lookup table's primary key is its global token (repositories.models.global_key).
        keys: list[UniqueConstraint | PrimaryKeyConstraint | Index] = [
            table.primary_key,
            *(c for c in table.constraints if isinstance(c, UniqueConstraint)),
            *(i for i in table.indexes if i.unique),
        ]
        names.update(
            key.name
            for key in keys
            if isinstance(key.name, str) and tenant_column not in key.columns
        )
    return frozenset(names)


@dataclass(frozen=True)
class CheckOptions:
    """What the checks need to know about the target database.

    ``config`` is the schema's ``IsolationConfig`` (schemas, app role, tenant column
    and binding), shared with ``tenancy audit``. ``global_unique`` names the unique
    indexes (or constraints) that are random global tokens: the only ones allowed
    not to include the tenant column. Each is an existence oracle across tenants
    by design, so the list is explicit; it starts with this library's own
    (``library_global_tokens``), and a service adds those of its own tables.
    """

    config: IsolationConfig = field(default_factory=IsolationConfig)
    global_unique: frozenset[str] = field(default_factory=library_global_tokens)
    #: Probe even while other sessions work in the database (the probe takes locks).
    allow_busy: bool = False
    #: How the probe holds its rows; ``auto``: committed on Citus, else rolled back.
    fixtures: FixtureMode = "auto"

    def __post_init__(self) -> None:
        if self.fixtures not in get_args(FixtureMode):
            raise ConfigurationError(
                f"fixtures {self.fixtures!r} is not one of {', '.join(get_args(FixtureMode))}"
            )

    @property
    def app_role(self) -> str:
        """Return the role the application connects as."""
        return self.config.app_role


@dataclass(frozen=True)
class TenantTable:
    """A table that carries the tenant column, as found in the catalog."""

    oid: int
    schema: str
    name: str
    tenant_column: str = "org_id"

    @property
    def qualified(self) -> str:
        """Return ``schema.name`` for display (never for SQL; the dialect quotes that)."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one subject (a table or the application role)."""

    category: str
    subject: str
    check: str
    passed: bool
    detail: str = ""

    @property
    def case_id(self) -> str:
        """Return ``subject::check``, the name tests and summaries use."""
        return f"{self.subject}::{self.check}"


def passed(category: str, subject: str, check: str, detail: str = "") -> CheckResult:
    """Return a passing result."""
    return CheckResult(category, subject, check, True, detail)


def failed(category: str, subject: str, check: str, detail: str) -> CheckResult:
    """Return a failing result; ``detail`` says what is wrong."""
    return CheckResult(category, subject, check, False, detail)


def tally(results: Iterable[CheckResult]) -> dict[str, tuple[int, int]]:
    """Return ``{category: (cases tried, failures)}`` for every category present."""
    tried: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for result in results:
        tried[result.category] += 1
        failures[result.category] += not result.passed
    order = [c for c in CATEGORIES if c in tried] + sorted(set(tried) - set(CATEGORIES))
    return {category: (tried[category], failures[category]) for category in order}
