"""Find which tenant owns a payment link from its public token, before any tenant is known.

A customer opening ``/pay/<token>`` arrives with no tenant. Row-level security
hides every link from a connection without ``app.org_id``, so the lookup goes
through the narrow SECURITY DEFINER function ``resolve_payment_link(token)``,
which reveals only the owning ``org_id`` and the link id. Everything else about
the link is then read in a normal unit of work for that tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.errors import NotFound, translated

_RESOLVE = text("SELECT org_id, payment_link_id FROM public.resolve_payment_link(:token)")

#: Longer than any token we issue: such input is refused without a query.
MAX_TOKEN_LENGTH = 64


@dataclass(frozen=True)
class PaymentLinkRef:
    """The owner and id of a payment link: all a token reveals without a tenant."""

    org_id: uuid.UUID
    payment_link_id: uuid.UUID


class PaymentLinkResolver:
    """Resolve public tokens on an app-role engine, outside any tenant transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def resolve(self, token: str) -> PaymentLinkRef:
        """Return the owner and id of the link with public ``token``.

        Raises:
            NotFound: no link has that token (or the token is empty or too long).
            DatabaseUnavailable: the database cannot be reached.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise NotFound("no payment link with that token")
        with translated():
            async with self._engine.connect() as connection:
                row = (await connection.execute(_RESOLVE, {"token": token})).first()
        if row is None:
            raise NotFound("no payment link with that token")
        return PaymentLinkRef(org_id=row.org_id, payment_link_id=row.payment_link_id)
