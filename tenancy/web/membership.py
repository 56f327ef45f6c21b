"""Is this user a member of that organization? The check the tenant middleware runs.

A protocol, so a service can answer from its own store or a cache; the default
asks Postgres inside the organization's own tenant transaction, where row-level
security shows the memberships of that organization only.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from tenancy.schema.role_names import quote_identifier

if TYPE_CHECKING:
    from tenancy.db.database import Database

#: The membership status that admits a request (``MembershipStatus.ACTIVE`` of the
#: payments models; the mechanism does not import the domain).
_ACTIVE = "active"


class MembershipCheck(Protocol):
    """Answers whether a user belongs to an organization."""

    async def is_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Return whether ``user_id`` is an active member of ``org_id``.

        Raises:
            DatabaseUnavailable: the answer could not be obtained.
        """


class UnitOfWorkMembershipCheck:
    """Look the membership up through a unit of work of the organization itself.

    Reads ``table`` (``org_id``, ``user_id``, ``status``; the library's ``memberships``
    by default) in the organization's tenant transaction, so RLS shows its rows only.
    """

    def __init__(self, db: Database[Any], *, table: str = "memberships") -> None:
        self._db = db
        # A quoted identifier: the table name is configuration, never request input.
        quoted = quote_identifier(table)
        self._statement = f"SELECT org_id, status FROM {quoted} WHERE user_id = $1"

    async def is_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Return whether ``user_id`` has an active membership in ``org_id``.

        Only an accepted, unsuspended membership admits: a pending invitation is no
        consent yet, and a suspension holds in its own organization.

        Raises:
            DatabaseUnavailable: the database cannot be reached or the pool is exhausted.
        """
        async with self._db.unit_of_work(org_id) as uow:
            driver = await uow.driver()
            rows = await driver.fetch(self._statement, user_id)
        # The org_id comparison repeats what RLS enforces, so a misconfigured
        # policy would still not admit a member of another organization.
        return any(row["org_id"] == org_id and row["status"] == _ACTIVE for row in rows)
