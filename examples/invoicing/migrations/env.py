"""The service's Alembic environment: one call, after importing its models."""

from __future__ import annotations

import models  # noqa: F401 - puts the service's tables on tenancy's Base.metadata
from alembic import context

from tenancy.schema.alembic_env import run_migrations
from tenancy.schema.tenant_table import tenant_policies

run_migrations(
    context,
    # The service's policies, so that `alembic check` keeps them in step too.
    entities=[*tenant_policies("invoices"), *tenant_policies("invoice_lines")],
)
