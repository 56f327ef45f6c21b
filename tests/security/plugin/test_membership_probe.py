"""Membership-based schemes: the binding names a user, who sees the accounts they belong to.

An account-based starter's shape: ``notes`` are visible to members of their
account (a sub-query on ``account_user``), and ``files`` carry the classic slip —
any signed-in member of any account sees every account's files.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from tenancy.audit.isolation_config import IsolationConfig
from tenancy.testing.result import ISOLATION, CheckOptions, CheckResult
from tenancy.testing.runner import check_database, run_sync
from tests.security.plugin.foreign_schemas import Roles
from tests.security.plugin.gapped_database import execute, janitor

pytestmark = pytest.mark.security

USER = "nullif(current_setting('request.jwt.claim.sub', true), '')::uuid"
MEMBER_OF = f"account_id IN (SELECT account_id FROM accounts.account_user WHERE user_id = {USER})"


def account_schema(roles: Roles) -> list[str]:
    """Return the account-based schema: memberships, member-only notes, leaky files."""
    statements = [
        "CREATE SCHEMA accounts",
        f"GRANT USAGE ON SCHEMA accounts TO {roles.app}",
        "CREATE TABLE accounts.account_user (user_id uuid NOT NULL, account_id uuid NOT NULL, "
        "account_role text NOT NULL, PRIMARY KEY (user_id, account_id))",
        f"CREATE POLICY own ON accounts.account_user USING (user_id = {USER})",
        "CREATE TABLE accounts.notes (account_id uuid NOT NULL, "
        "id uuid NOT NULL DEFAULT gen_random_uuid(), body text NOT NULL, "
        "PRIMARY KEY (account_id, id))",
        f"CREATE POLICY members ON accounts.notes USING ({MEMBER_OF}) WITH CHECK ({MEMBER_OF})",
        "CREATE TABLE accounts.files (account_id uuid NOT NULL, "
        "id uuid NOT NULL DEFAULT gen_random_uuid(), path text NOT NULL, "
        "PRIMARY KEY (account_id, id))",
        # The slip: "is a member of something", not "of this row's account".
        "CREATE POLICY signed_in ON accounts.files USING (EXISTS "
        f"(SELECT 1 FROM accounts.account_user WHERE user_id = {USER})) "
        f"WITH CHECK ({MEMBER_OF})",
    ]
    for table in ("account_user", "notes", "files"):
        statements += [
            f"ALTER TABLE accounts.{table} OWNER TO {roles.owner}",
            f"ALTER TABLE accounts.{table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE accounts.{table} FORCE ROW LEVEL SECURITY",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON accounts.{table} TO {roles.app}",
        ]
    return statements


@pytest.fixture(scope="module")
def results(admin_url: URL) -> Iterator[dict[str, CheckResult]]:
    """The isolation results with the membership declared, by ``subject::check``."""
    suffix = uuid.uuid4().hex[:8]
    roles = Roles(app=f"acct_app_{suffix}", owner=f"acct_owner_{suffix}")
    name = f"tenancy_accounts_{suffix}"
    execute(admin_url, *roles.create())
    try:
        with janitor(admin_url, name):
            url = admin_url.set(database=name)
            execute(url, *account_schema(roles))
            config = IsolationConfig(
                schemas=("accounts",),
                app_role=roles.app,
                tenant_column="account_id",
                tenant_binding="SELECT set_config('request.jwt.claim.sub', {tenant}, true)",
                membership="accounts.account_user(user_id, account_id)",
            )
            found = run_sync(check_database(url, CheckOptions(config=config, allow_busy=True)))
            yield {r.case_id: r for r in found if r.category == ISOLATION}
    finally:
        execute(admin_url, *roles.drop())


def test_member_only_rows_pass_every_isolation_check(results: dict[str, CheckResult]) -> None:
    notes = {k: r for k, r in results.items() if k.startswith("accounts.notes::")}
    assert len(notes) == 6
    assert all(r.passed for r in notes.values()), notes


def test_rows_visible_to_any_member_of_any_account_are_caught(
    results: dict[str, CheckResult],
) -> None:
    leak = results["accounts.files::cross_tenant_select"]
    assert not leak.passed
    # Found by a member of tenant A, not inferred from a probe that saw nothing.
    assert leak.detail == "tenant A sees 1 row(s) of another tenant"


def test_a_membership_table_that_is_not_there_is_a_reason_not_a_crash(admin_url: URL) -> None:
    config = IsolationConfig(membership="nowhere.members(user_id, org_id)")
    found = run_sync(check_database(admin_url, CheckOptions(config=config, allow_busy=True)))
    failures = [r for r in found if r.category == ISOLATION and not r.passed]

    assert failures
    assert all("membership table nowhere.members does not exist" in r.detail for r in failures)
