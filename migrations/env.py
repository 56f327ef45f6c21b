"""Alembic environment of the library's own revisions (``tenancy migrate``).

Everything lives in ``tenancy.schema.alembic_env``, which a service's ``env.py``
calls as well; here it runs the library's history (``tenancy_alembic_version``).
"""

from __future__ import annotations

from alembic import context

from tenancy.schema.alembic_env import run_migrations

run_migrations(context, library=True)
