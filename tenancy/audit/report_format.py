"""Render an ``AuditReport`` as plain-text tables for a terminal or a CI log."""

from __future__ import annotations

from collections.abc import Sequence

from tenancy.audit.database_audit import AuditReport
from tenancy.audit.pg_catalog import Role
from tenancy.audit.table_judgement import Coverage, TableAudit

_TABLE_HEADER = (
    "TABLE",
    "KIND",
    "RLS",
    "FORCE",
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "PREDICATE",
    "UNIQUE",
    "FK",
    "TENANT INDEX",
)


def format_report(report: AuditReport) -> str:
    """Return the whole report: tables, policies, roles, views, functions, verdict."""
    sections = [
        "Tables",
        _grid(_TABLE_HEADER, [_table_row(t) for t in report.tables]),
        "  per command: <n>P = permissive policies, <n>R = restrictive; '!' = no restrictive guard",
        "",
        "Policies",
        _grid(
            ("TABLE", "POLICY", "AS", "FOR", "TO", "USING", "WITH CHECK"),
            [
                (
                    f"{t.schema}.{t.name}",
                    a.policy.name,
                    "PERMISSIVE" if a.policy.permissive else "RESTRICTIVE",
                    a.policy.command,
                    ",".join(a.policy.roles),
                    a.using,
                    a.check,
                )
                for t in report.tables
                for a in t.policies
            ],
        ),
        "",
        "Roles",
        _grid(
            (
                "ROLE",
                "SUPERUSER",
                "BYPASSRLS",
                "PRIVILEGED MEMBER",
                "OWNS",
                "TABLE PRIVILEGES",
                "DEFINER FUNCTIONS",
            ),
            [
                _role_row(r)
                for r in (report.app_role, report.relay_role, report.chain_role)
                if r is not None
            ],
        ),
        "",
        "Views",
        _grid(
            ("VIEW", "KIND", "SECURITY_INVOKER"),
            [
                (
                    f"{v.schema}.{v.name}",
                    "materialized" if v.materialized else "view",
                    _yes(v.security_invoker),
                )
                for v in report.views
            ],
        ),
        "",
        "SECURITY DEFINER functions",
        _grid(
            ("FUNCTION", "OWNER", "SEARCH_PATH"),
            [
                (f"{f.schema}.{f.signature}", f.owner, f.search_path or "NOT SET")
                for f in report.definer_functions
            ],
        ),
        "",
        _verdict(report),
    ]
    return "\n".join(sections)


def _table_row(table: TableAudit) -> tuple[str, ...]:
    return (
        f"{table.schema}.{table.name}",
        str(table.kind),
        _yes(table.rls_enabled),
        _yes(table.rls_forced),
        *(_coverage(c) for c in table.coverage),
        table.predicate,
        _check(table.unique_keys_ok),
        _check(table.foreign_keys_ok),
        _check(table.tenant_index),
    )


def _coverage(coverage: Coverage) -> str:
    cell = f"{len(coverage.permissive)}P {len(coverage.restrictive)}R"
    return f"{cell} !" if coverage.guarded is False else cell


def _role_row(role: Role) -> tuple[str, ...]:
    return (
        role.name,
        _yes(role.superuser),
        _yes(role.bypassrls),
        _yes(role.privileged_member),
        str(role.owned_objects),
        # The app role reaches every table; listing them would drown the one that matters.
        (", ".join(role.tables) or "-") if len(role.tables) <= 3 else f"{len(role.tables)} tables",
        ", ".join(role.definers) or "-",
    )


def _verdict(report: AuditReport) -> str:
    scope = f"Schemas: {', '.join(report.schemas) or '(none)'}; tenant binding: {report.binding}"
    if report.ok:
        return f"{scope}\nAudit passed: {len(report.tables)} tables checked, no gaps."
    lines = [scope, f"Audit FAILED: {len(report.gaps)} gap(s)"]
    lines.extend(f"  - {gap}" for gap in report.gaps)
    return "\n".join(lines)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _check(value: bool | None) -> str:
    if value is None:
        return "-"
    return "ok" if value else "GAP"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "  (none)"
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
