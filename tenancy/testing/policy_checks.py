"""Policy-content checks: the audit's findings that the catalog checks and probes miss.

A probe with two synthetic tenants cannot see a bypass setting OR-ed into a
permissive policy, a range predicate, a definer function that reads every
tenant's rows, or an owner the app role can become. The audit
(``tenancy.audit``) reads those from the catalog; here its findings become check
results, so ``security-check`` and the pytest plugin report them too.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.audit.database_audit import AuditReport, audit_connection
from tenancy.audit.table_judgement import Predicate, TableAudit
from tenancy.audit.table_kind import TableKind
from tenancy.testing.result import POLICY, CheckOptions, CheckResult, failed, passed

#: Per tenant table.
TABLE_POLICY_CHECKS: tuple[str, ...] = (
    "guard_is_tenant_predicate",
    "permissive_is_tenant_only",
    "foreign_keys_tenant_scoped",
)
#: Audit finding codes reported database-wide, one check each.
EXPOSURE_CODES: tuple[str, ...] = (
    "app-dml-without-rls",
    "definer-reads-tenant-table",
    "app-can-become-owner",
    "view-not-security-invoker",
    "tenant-setting-default",
)
DATABASE = "database"


async def policy_checks(connection: AsyncConnection, options: CheckOptions) -> list[CheckResult]:
    """Return the policy-content results: per tenant table, then per exposure kind."""
    report = await audit_connection(connection, options.config)
    results: list[CheckResult] = []
    for table in report.tables:
        if table.kind in (TableKind.TENANT, TableKind.ROOT):
            results += _table_results(table)
    results += _exposure_results(report)
    return results


def _table_results(table: TableAudit) -> list[CheckResult]:
    subject = f"{table.schema}.{table.name}"
    # Only where no RESTRICTIVE tenant guard covers the command does a wider
    # permissive policy leak (the audit flags it either way, as a latent gap).
    unguarded = {c.command for c in table.coverage if c.guarded is False}
    wide = [
        audit.policy.name
        for audit in table.policies
        if audit.policy.permissive
        and {audit.using, audit.check} & {Predicate.TRUE, Predicate.OTHER}
        and ((audit.policy.command == "ALL" and unguarded) or audit.policy.command in unguarded)
    ]
    fk_gaps = [g.problem for g in table.gaps if g.code == "fk-not-tenant-scoped"]
    # A RESTRICTIVE policy that is there but is not the tenant predicate (it ORs in
    # a bypass, say) guards nothing; a missing one is the catalog check's finding.
    false_guards = [c.command for c in table.coverage if c.guarded is False and c.restrictive]
    return [
        failed(
            POLICY,
            subject,
            "guard_is_tenant_predicate",
            f"the RESTRICTIVE policies for {', '.join(false_guards)} are not the tenant predicate",
        )
        if false_guards
        else passed(POLICY, subject, "guard_is_tenant_predicate"),
        failed(
            POLICY,
            subject,
            "permissive_is_tenant_only",
            f"unguarded permissive policies wider than the tenant predicate: {', '.join(wide)}",
        )
        if wide
        else passed(POLICY, subject, "permissive_is_tenant_only"),
        failed(POLICY, subject, "foreign_keys_tenant_scoped", "; ".join(fk_gaps))
        if fk_gaps
        else passed(POLICY, subject, "foreign_keys_tenant_scoped"),
    ]


def _exposure_results(report: AuditReport) -> list[CheckResult]:
    results = []
    for code in EXPOSURE_CODES:
        check = code.replace("-", "_")
        gaps = [g for g in report.gaps if g.code == code]
        results += [failed(POLICY, g.subject, check, g.problem) for g in gaps]
        if not gaps:
            results.append(passed(POLICY, DATABASE, check))
    return results
