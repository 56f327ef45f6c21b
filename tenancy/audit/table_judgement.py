"""Judge one table: tenant ownership, row-level security, policies, keys, indexes.

A tenant table passes when row-level security is enabled and forced, every
command is guarded by a RESTRICTIVE tenant policy (so no permissive policy can
widen it), every permissive policy is the wrapped tenant predicate, every unique
key includes ``org_id`` (except the listed global tokens), every foreign key to
another tenant table pairs ``org_id`` with ``org_id``, and an index leads with
``org_id``. Predicates are compared with Postgres's own rendering of the tenant
predicate (see ``tenancy.audit.pg_catalog.render_predicates``), never parsed here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tenancy.audit.pg_catalog import ForeignKey, Index, Policy, Table

TENANT_COLUMN = "org_id"
#: The tenant table itself: its ``id`` is the tenant id.
TENANT_ROOT = "organizations"
#: Tables without ``org_id`` by design but still under RLS (their own rules), and why.
GLOBAL_TABLES = {"users": "global identities, visible in a tenant through memberships"}
#: Tables that hold no tenant data at all, so no RLS; they must not reference tenant rows.
SHARED_TABLES = {
    "chain_checkpoints": "the deposit scanner's position per chain (public chain facts)",
    "chain_blocks": "hashes of scanned blocks, for reorganisation checks (public chain facts)",
}
#: Unique keys allowed to leave out ``org_id``: random global tokens, which reveal
#: nothing about another tenant. Kept here, in reviewed code, rather than as a
#: ``COMMENT`` in the database: the audit must not take the audited database's word
#: for its own exceptions. Name *and* columns must match, so renaming another
#: constraint to an allowed name does not slip through.
GLOBAL_TOKEN_KEYS = frozenset(
    {
        ("payment_links", "uq_payment_links_token", ("token",)),
        ("wallets", "uq_wallets_chain_address", ("chain", "address")),
        # SHA-256 of a 256-bit random invitation token (migration 0009).
        ("memberships", "uq_memberships_invitation_token_hash", ("invitation_token_hash",)),
    }
)
COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")


class TableKind(StrEnum):
    """How a table relates to tenants."""

    TENANT = "tenant"
    ROOT = "root"
    GLOBAL = "global"
    SHARED = "shared"
    UNKNOWN = "UNKNOWN"


class Predicate(StrEnum):
    """What a policy expression is, compared with the tenant predicate."""

    TENANT = "tenant"
    UNWRAPPED = "unwrapped"
    TRUE = "true"
    OTHER = "other"
    ABSENT = "-"


@dataclass(frozen=True)
class Gap:
    """One finding: ``subject`` (a table, role, view or function) and what is wrong."""

    subject: str
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


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

    # Postgres's own rendering of the tenant predicate, keyed by (column, wrapped).
    predicates: dict[tuple[str, bool], str]
    app_role: str
    indexes: tuple[Index, ...]
    foreign_keys: tuple[ForeignKey, ...]
    tenant_tables: frozenset[str]


def table_kind(table: Table) -> TableKind:
    """Return whether ``table`` is tenant-owned, the tenant root, declared global, or neither."""
    if table.name == TENANT_ROOT:
        return TableKind.ROOT
    if TENANT_COLUMN in table.columns:
        return TableKind.TENANT
    if table.name in GLOBAL_TABLES:
        return TableKind.GLOBAL
    if table.name in SHARED_TABLES:
        return TableKind.SHARED
    return TableKind.UNKNOWN


def _tenant_column(kind: TableKind) -> str:
    return "id" if kind is TableKind.ROOT else TENANT_COLUMN


def classify(expression: str | None, column: str, predicates: dict[tuple[str, bool], str]) -> str:
    """Return the ``Predicate`` that ``expression`` (as Postgres renders it) is."""
    if expression is None:
        return Predicate.ABSENT
    if expression == predicates[(column, True)]:
        return Predicate.TENANT
    if expression == predicates[(column, False)]:
        return Predicate.UNWRAPPED
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
    kind = table_kind(table)
    tenant = kind in (TableKind.TENANT, TableKind.ROOT)
    column = _tenant_column(kind)
    gaps: list[str] = []
    if kind is TableKind.UNKNOWN:
        gaps.append(f"has no {TENANT_COLUMN} and is declared neither global nor shared")
    if kind in (TableKind.TENANT, TableKind.ROOT, TableKind.GLOBAL):
        if not table.rls_enabled:
            gaps.append("row-level security is not enabled")
        if not table.rls_forced:
            gaps.append("row-level security is not forced (the table owner bypasses it)")
    coverage = tuple(_coverage(policies, command, kind, column, rules) for command in COMMANDS)
    gaps.extend(
        f"no RESTRICTIVE guard for {c.command}: a permissive policy could widen it"
        for c in coverage
        if c.guarded is False
    )
    audits = tuple(
        PolicyAudit(
            p,
            classify(p.using, column, rules.predicates),
            classify(p.check, column, rules.predicates),
        )
        for p in policies
    )
    if tenant:
        gaps.extend(_policy_gaps(policies, column, rules))
    # A RESTRICTIVE policy with a rule of its own (memberships' consent rules) can only
    # narrow access, so it does not make the tenant predicate "mixed".
    seen = {
        v
        for a in audits
        for v in (a.using, a.check)
        if v != Predicate.ABSENT and (a.policy.permissive or v != Predicate.OTHER)
    }
    return TableAudit(
        name=table.name,
        kind=kind,
        rls_enabled=table.rls_enabled,
        rls_forced=table.rls_forced,
        policies=audits,
        coverage=coverage,
        predicate=_predicate_summary(seen, tenant),
        unique_keys_ok=_unique_gaps(table, column, rules, gaps) if tenant else None,
        foreign_keys_ok=(
            _foreign_key_gaps(table, rules, gaps, shared=kind is TableKind.SHARED)
            if tenant or kind is TableKind.SHARED
            else None
        ),
        tenant_index=_has_tenant_index(table, column, rules, gaps) if tenant else None,
        gaps=tuple(Gap(table.name, problem) for problem in gaps),
    )


def _coverage(
    policies: tuple[Policy, ...], command: str, kind: TableKind, column: str, rules: TableRules
) -> Coverage:
    applying = [p for p in policies if _applies(p, command, rules.app_role)]
    restrictive = [p for p in applying if not p.permissive]
    guarded: bool | None = None
    if kind in (TableKind.TENANT, TableKind.ROOT):
        # Only a RESTRICTIVE policy that is the tenant predicate itself guards a command.
        allowed = {Predicate.TENANT, Predicate.UNWRAPPED}
        guarded = any(
            {classify(e, column, rules.predicates) for e in _expressions(p, command)} <= allowed
            for p in restrictive
        )
    elif kind is TableKind.GLOBAL:
        guarded = any(any(e is not None for e in _expressions(p, command)) for p in restrictive)
    return Coverage(
        command,
        tuple(p.name for p in applying if p.permissive),
        tuple(p.name for p in restrictive),
        guarded,
    )


def _policy_gaps(policies: Iterable[Policy], column: str, rules: TableRules) -> list[str]:
    gaps = []
    for policy in policies:
        kinds = {classify(e, column, rules.predicates) for e in (policy.using, policy.check)}
        if Predicate.UNWRAPPED in kinds:
            gaps.append(
                f"policy {policy.name!r} uses the bare predicate (evaluated per row); "
                "wrap it as (SELECT nullif(current_setting(...), '')::uuid)"
            )
        if policy.permissive and kinds & {Predicate.TRUE, Predicate.OTHER}:
            gaps.append(
                f"permissive policy {policy.name!r} ({policy.command}) is not the tenant "
                f"predicate: USING {policy.using or '-'} WITH CHECK {policy.check or '-'}"
            )
    return gaps


def _predicate_summary(seen: set[str], tenant: bool) -> str:
    if not tenant:
        return "own rules" if seen else "-"
    if not seen:
        return "none"
    if seen == {Predicate.TENANT}:
        return "wrapped"
    if Predicate.UNWRAPPED in seen:
        return "UNWRAPPED"
    return "mixed"


def _unique_gaps(table: Table, column: str, rules: TableRules, gaps: list[str]) -> bool:
    ok = True
    for index in rules.indexes:
        if index.table != table.name or not index.unique or column in index.columns:
            continue
        if (table.name, index.name, index.columns) in GLOBAL_TOKEN_KEYS:
            continue
        ok = False
        gaps.append(
            f"unique key {index.name!r} {_columns(index.columns)} leaves out {column}: "
            "its violations reveal other tenants' values"
        )
    return ok


def _foreign_key_gaps(table: Table, rules: TableRules, gaps: list[str], *, shared: bool) -> bool:
    ok = True
    for fk in rules.foreign_keys:
        if fk.table != table.name or fk.ref_table not in rules.tenant_tables:
            continue
        if shared:
            ok = False
            gaps.append(f"shared table references tenant table {fk.ref_table} ({fk.name!r})")
            continue
        pairs = set(zip(fk.columns, fk.ref_columns, strict=True))
        wanted = (TENANT_COLUMN, "id" if fk.ref_table == TENANT_ROOT else TENANT_COLUMN)
        if wanted not in pairs:
            ok = False
            gaps.append(
                f"foreign key {fk.name!r} {_columns(fk.columns)} -> {fk.ref_table}"
                f"{_columns(fk.ref_columns)} does not match {wanted[0]} to {wanted[1]}, "
                "so it can point at another tenant's row"
            )
    return ok


def _has_tenant_index(table: Table, column: str, rules: TableRules, gaps: list[str]) -> bool:
    leads = any(i.table == table.name and i.columns[:1] == (column,) for i in rules.indexes)
    if not leads:
        gaps.append(f"no index leads with {column}")
    return leads


def _columns(columns: tuple[str | None, ...]) -> str:
    return "(" + ", ".join(c or "<expression>" for c in columns) + ")"
