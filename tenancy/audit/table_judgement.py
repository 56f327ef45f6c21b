"""Judge one table: tenant ownership, row-level security, policies, keys, indexes.

A tenant table passes when row-level security is enabled and forced, every
command is guarded by a RESTRICTIVE tenant policy (so no permissive policy can
widen it), every permissive policy is the wrapped tenant predicate, every unique
key includes the tenant column (except declared random keys), every foreign key
to another tenant table pairs the tenant columns, and an index leads with the
tenant column (``org_id`` unless configured). Predicates are compared with
Postgres's own renderings of the tenant predicate (see
``tenancy.audit.pg_catalog.render_predicates``), never parsed here: anything else
in a permissive policy (an OR, another setting, a range) is ``OTHER``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.audit.pg_catalog import (
    PROBE_COLUMN,
    ForeignKey,
    Index,
    Policy,
    RenderedPredicates,
    Table,
)
from tenancy.audit.table_kind import (
    GLOBAL_TOKEN_KEYS,
    TableKind,
    table_kind,
    tenant_column,
    uses_library_tables,
)

COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")


class Predicate(StrEnum):
    """What a policy expression is, compared with the tenant predicate."""

    TENANT = "tenant"
    #: The tenant predicate with the setting read in a ``(SELECT ...)``: as strict and,
    #: on one node, as fast, but Citus refuses a sub-query in a policy.
    WRAPPED = "wrapped"
    TRUE = "true"
    OTHER = "other"
    ABSENT = "-"


@dataclass(frozen=True)
class Gap:
    """One finding: ``subject`` (a table, role, view or function), a short code, what is wrong."""

    subject: str
    problem: str
    code: str = "gap"

    def __str__(self) -> str:
        return f"{self.subject} [{self.code}]: {self.problem}"


@dataclass(frozen=True)
class Coverage:
    """The policies that apply to one command; ``guarded`` is ``None`` where no guard is due."""

    command: str
    permissive: tuple[str, ...]
    restrictive: tuple[str, ...]
    guarded: bool | None


@dataclass(frozen=True)
class PolicyAudit:
    """A policy and what its USING and WITH CHECK expressions are (``Predicate`` values)."""

    policy: Policy
    using: str
    check: str


@dataclass(frozen=True)
class TableAudit:
    """The verdict on one table; ``None`` marks a check that does not apply."""

    schema: str
    name: str
    kind: TableKind
    rls_enabled: bool
    rls_forced: bool
    policies: tuple[PolicyAudit, ...]
    coverage: tuple[Coverage, ...]
    predicate: str
    unique_keys_ok: bool | None
    foreign_keys_ok: bool | None
    tenant_index: bool | None
    gaps: tuple[Gap, ...]


@dataclass(frozen=True)
class TableRules:
    """What judging a table needs beyond the table: the rendered predicates and keys."""

    # Postgres's renderings of the tenant predicate, by the tenant column's type;
    # empty when the binding names no setting (the expected predicate is unknown).
    predicates: dict[str, RenderedPredicates]
    app_role: str
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    #: ``schema.table`` of each tenant table -> its tenant column.
    tenant_tables: dict[str, str]
    config: IsolationConfig
    #: Quotes an identifier as Postgres renders it in an expression.
    quote: Callable[[str], str]


def classify(
    expression: str | None,
    column: str,
    rendered: RenderedPredicates | None,
    quote: Callable[[str], str],
) -> str:
    """Return the ``Predicate`` that ``expression`` (as Postgres renders it) is.

    ``rendered`` is ``None`` when the expected predicate is unknown: any expression
    other than ``true`` is then ``OTHER``.
    """
    if expression is None:
        return Predicate.ABSENT
    if rendered is not None:
        name = quote(column)
        if expression in {r.replace(PROBE_COLUMN, name) for r in rendered.bare}:
            return Predicate.TENANT
        if expression in {r.replace(PROBE_COLUMN, name) for r in rendered.wrapped}:
            return Predicate.WRAPPED
    if expression.strip() == "true":
        return Predicate.TRUE
    return Predicate.OTHER


def _expressions(policy: Policy, command: str) -> tuple[str | None, ...]:
    # What Postgres evaluates for this command: USING filters the rows read or
    # targeted; WITH CHECK (or USING, when a policy has no WITH CHECK) the rows written.
    check = policy.check if policy.check is not None else policy.using
    if command in ("SELECT", "DELETE"):
        return (policy.using,)
    if command == "INSERT":
        return (check,)
    return (policy.using, check)


def _applies(policy: Policy, command: str, role: str) -> bool:
    return policy.command in ("ALL", command) and ("public" in policy.roles or role in policy.roles)


def audit_table(table: Table, policies: tuple[Policy, ...], rules: TableRules) -> TableAudit:
    """Judge one table and the policies on it."""
    kind = table_kind(table, rules.config)
    tenant = kind in (TableKind.TENANT, TableKind.ROOT)
    column = tenant_column(table, kind, rules.config)
    rendered = rules.predicates.get(table.column_types.get(column, ""))

    def classify_here(expression: str | None) -> str:
        return classify(expression, column, rendered, rules.quote)

    gaps: list[tuple[str, str]] = []
    if kind is TableKind.UNKNOWN:
        gaps.append(
            ("no-tenant-column", f"has no {column} and is declared neither global nor shared")
        )
    declared = rules.config.tenant_type
    actual = table.column_types.get(column, "")
    if tenant and declared is not None and not _is_of_type(actual, declared):
        gaps.append(
            ("tenant-type-mismatch", f"{column} is {actual}, but the tenant type is {declared}")
        )
    if kind in (TableKind.TENANT, TableKind.ROOT, TableKind.GLOBAL):
        if not table.rls_enabled:
            if table.parent is not None:
                gaps.append(
                    (
                        "partition-rls-disabled",
                        f"row-level security is not enabled on this "
                        f"child of {table.parent}: queried directly, it shows every tenant's rows",
                    )
                )
            else:
                gaps.append(("rls-disabled", "row-level security is not enabled"))
        if not table.rls_forced:
            gaps.append(
                ("rls-not-forced", "row-level security is not forced (the table owner bypasses it)")
            )
    coverage = tuple(
        _coverage(policies, command, kind, classify_here, rules) for command in COMMANDS
    )
    gaps.extend(
        (
            "no-restrictive-guard",
            f"no RESTRICTIVE guard for {c.command}: a permissive policy could widen it",
        )
        for c in coverage
        if c.guarded is False
    )
    audits = tuple(PolicyAudit(p, classify_here(p.using), classify_here(p.check)) for p in policies)
    if tenant:
        gaps.extend(_policy_gaps(policies, classify_here))
    # A RESTRICTIVE policy with a rule of its own (memberships' consent rules) can only
    # narrow access, so it does not make the tenant predicate "mixed".
    seen = {
        v
        for a in audits
        for v in (a.using, a.check)
        if v != Predicate.ABSENT and (a.policy.permissive or v != Predicate.OTHER)
    }
    return TableAudit(
        schema=table.schema,
        name=table.name,
        kind=kind,
        rls_enabled=table.rls_enabled,
        rls_forced=table.rls_forced,
        policies=audits,
        coverage=coverage,
        predicate=_predicate_summary(seen, tenant),
        unique_keys_ok=_unique_gaps(table, column, rules, gaps) if tenant else None,
        foreign_keys_ok=(
            _foreign_key_gaps(table, column, rules, gaps, shared=kind is TableKind.SHARED)
            if tenant or kind is TableKind.SHARED
            else None
        ),
        tenant_index=_has_tenant_index(table, column, rules, gaps) if tenant else None,
        gaps=tuple(Gap(table.qualified, problem, code) for code, problem in gaps),
    )


def _coverage(
    policies: tuple[Policy, ...],
    command: str,
    kind: TableKind,
    classify_here: Callable[[str | None], str],
    rules: TableRules,
) -> Coverage:
    applying = [p for p in policies if _applies(p, command, rules.app_role)]
    restrictive = [p for p in applying if not p.permissive]
    guarded: bool | None = None
    if kind in (TableKind.TENANT, TableKind.ROOT):
        # Only a RESTRICTIVE policy that is the tenant predicate itself guards a command.
        allowed = {Predicate.TENANT, Predicate.WRAPPED}
        guarded = any(
            {classify_here(e) for e in _expressions(p, command)} <= allowed for p in restrictive
        )
    elif kind is TableKind.GLOBAL:
        guarded = any(any(e is not None for e in _expressions(p, command)) for p in restrictive)
    return Coverage(
        command,
        tuple(p.name for p in applying if p.permissive),
        tuple(p.name for p in restrictive),
        guarded,
    )


def _policy_gaps(
    policies: Iterable[Policy], classify_here: Callable[[str | None], str]
) -> list[tuple[str, str]]:
    gaps = []
    for policy in policies:
        kinds = {classify_here(e) for e in (policy.using, policy.check)}
        if policy.permissive and kinds & {Predicate.TRUE, Predicate.OTHER}:
            gaps.append(
                (
                    "permissive-beyond-tenant",
                    f"permissive policy {policy.name!r} ({policy.command}) is not the tenant "
                    f"predicate: USING {policy.using or '-'} WITH CHECK {policy.check or '-'}",
                )
            )
    return gaps


def _predicate_summary(seen: set[str], tenant: bool) -> str:
    if not tenant:
        return "own rules" if seen else "-"
    if not seen:
        return "none"
    if seen == {Predicate.TENANT}:
        return "bare"
    if seen == {Predicate.WRAPPED}:
        return "wrapped"
    return "mixed"


def _here(table: Table, schema: str, name: str) -> bool:
    return (schema, name) == (table.schema, table.name)


def _unique_gaps(table: Table, column: str, rules: TableRules, gaps: list[tuple[str, str]]) -> bool:
    ok = True
    library = uses_library_tables(rules.config) and table.schema == "public"
    for index in rules.indexes:
        if not _here(table, index.schema, index.table) or not index.unique:
            continue
        if column in index.columns:
            continue
        if library and (table.name, index.name, index.columns) in GLOBAL_TOKEN_KEYS:
            continue
        if all(
            c is not None and rules.config.is_random_key(table.schema, table.name, c)
            for c in index.columns
        ):
            continue
        ok = False
        gaps.append(
            (
                "unique-without-tenant",
                f"unique key {index.name!r} {_columns(index.columns)} leaves out {column}: "
                "its violations reveal other tenants' values",
            )
        )
    return ok


def _foreign_key_gaps(
    table: Table, column: str, rules: TableRules, gaps: list[tuple[str, str]], *, shared: bool
) -> bool:
    ok = True
    for fk in rules.foreign_keys:
        target = f"{fk.ref_schema}.{fk.ref_table}"
        if not _here(table, fk.schema, fk.table) or target not in rules.tenant_tables:
            continue
        if shared:
            ok = False
            gaps.append(
                (
                    "shared-references-tenant",
                    f"shared table references tenant table {fk.ref_table} ({fk.name!r})",
                )
            )
            continue
        pairs = set(zip(fk.columns, fk.ref_columns, strict=True))
        wanted = (column, rules.tenant_tables[target])
        if wanted not in pairs:
            ok = False
            gaps.append(
                (
                    "fk-not-tenant-scoped",
                    f"foreign key {fk.name!r} {_columns(fk.columns)} -> {fk.ref_table}"
                    f"{_columns(fk.ref_columns)} does not match {wanted[0]} to {wanted[1]}, "
                    "so it can point at another tenant's row",
                )
            )
    return ok


def _has_tenant_index(
    table: Table, column: str, rules: TableRules, gaps: list[tuple[str, str]]
) -> bool:
    leads = any(
        _here(table, i.schema, i.table) and i.columns[:1] == (column,) for i in rules.indexes
    )
    if not leads:
        gaps.append(("no-tenant-index", f"no index leads with {column}"))
    return leads


#: ``format_type`` renderings of each configurable tenant type.
_TYPE_FAMILIES = {
    "uuid": ("uuid",),
    "integer": ("integer", "bigint", "smallint"),
    "text": ("text", "character varying", "character", "citext"),
}


def _is_of_type(type_sql: str, declared: str) -> bool:
    # format_type adds a length to varchar and char columns: compare the base name.
    return type_sql.split("(", 1)[0] in _TYPE_FAMILIES[declared]


def _columns(columns: tuple[str | None, ...]) -> str:
    return "(" + ", ".join(c or "<expression>" for c in columns) + ")"
