"""Payment links: created with a random public token, used up to ``max_uses``, expired in bulk.

A token is unique across tenants through its lookup row (``payment_link_tokens``),
which the link references: ``add`` writes it first, in the same transaction, and
``delete`` removes it with the link. A link without its lookup row is refused by
the database (``ForeignKeyViolation``), never stored with a duplicate token.
"""

from __future__ import annotations

import builtins
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import delete, func, insert, or_, select, update

from repositories.base import AsyncRepository
from repositories.domain_events import PaymentLinkCreated, PaymentLinkExpired, PaymentLinkUsed
from repositories.errors import PaymentLinkExhausted, PaymentLinkUnavailable
from repositories.models import PaymentLink, PaymentLinkToken
from repositories.models.enums import PaymentLinkStatus
from repositories.payment_link_specs import PaymentLinkSpecs
from repositories.validation import require_aware, require_int
from tenancy.errors import Conflict, NotFound

#: 32 random bytes: the token is the only secret guarding a link, and it is global.
TOKEN_BYTES = 32


def new_token() -> str:
    """Return a fresh URL-safe public token (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class PaymentLinkRepository(AsyncRepository[PaymentLink, uuid.UUID]):
    """Storage of ``PaymentLink`` aggregates.

    ``add`` raises the domain ``PaymentLinkCreated`` rather than the generic
    lifecycle event, which would carry the same name with a different payload.
    """

    model = PaymentLink
    sort_keys: ClassVar = {
        "created_at": "created_at",
        "id": "id",
        "expires_at": "expires_at",
        "use_count": "use_count",
    }
    delete_returns: ClassVar = ("token",)

    async def add(self, obj: PaymentLink) -> PaymentLink:
        """Insert a link (a token is generated if it has none) and raise ``PaymentLinkCreated``.

        Raises:
            Conflict: the token is taken (by any tenant); nothing is written.
            ForeignKeyViolation: the price does not exist in this tenant.
            InvalidData: ``max_uses`` is not a positive int.
        """
        return (await self.add_many([obj]))[0]

    async def add_many(self, objs: Sequence[PaymentLink]) -> builtins.list[PaymentLink]:
        """Insert several links in one flush, each with its ``PaymentLinkCreated``.

        Raises:
            Conflict: a token is taken (by any tenant); nothing is written.
        """
        for obj in objs:
            if obj.max_uses is not None:
                obj.max_uses = _max_uses(obj.max_uses)
            if not obj.token:
                obj.token = new_token()
            if obj.id is None:
                obj.id = uuid.uuid4()
            if obj.expires_at is not None:
                require_aware(obj.expires_at, "expires_at")
        # The lookup rows first: the links reference them (org_id from the column default).
        if objs:
            rows = [{"token": obj.token, "link_id": obj.id} for obj in objs]
            await self._execute(insert(PaymentLinkToken), rows)
        self.session.add_all(objs)
        await self._flush()
        for obj in objs:
            obj.record_event(
                PaymentLinkCreated(
                    aggregate_id=str(obj.id),
                    price_id=obj.price_id,
                    expires_at=obj.expires_at,
                    max_uses=obj.max_uses,
                )
            )
        return self._see_all(objs)

    async def create(
        self,
        price_id: uuid.UUID,
        *,
        expires_at: datetime | None = None,
        max_uses: int | None = None,
    ) -> PaymentLink:
        """Create an active link to ``price_id`` with a fresh random token.

        Raises:
            ForeignKeyViolation: the price does not exist in this tenant.
            InvalidData: ``max_uses`` is not a positive int, or ``expires_at`` is naive.
        """
        if max_uses is not None:
            max_uses = _max_uses(max_uses)
        return await self.add(
            PaymentLink(
                price_id=price_id, token=new_token(), expires_at=expires_at, max_uses=max_uses
            )
        )

    async def _after_delete(self, deleted: Sequence[Any]) -> None:
        # After the links, which reference these rows. A token is random and never
        # reused, but its lookup row must not outlive the link.
        tokens = [row.token for row in deleted]
        if tokens:
            statement = delete(PaymentLinkToken).where(PaymentLinkToken.token.in_(tokens))
            await self._execute(statement)

    async def get_by_token(self, token: str) -> PaymentLink:
        """Return this tenant's link with public ``token``.

        Raises:
            NotFound: no link of this tenant has that token.
        """
        result = await self._execute(select(PaymentLink).where(PaymentLink.token == token))
        link: PaymentLink | None = result.scalars().first()
        if link is None:
            raise NotFound("no payment link with that token")
        return self._see(link)

    async def with_status(self, *statuses: str) -> builtins.list[PaymentLink]:
        """Return the links whose status is one of ``statuses``, newest first.

        Raises:
            InvalidData: no status, or an unknown one.
        """
        return await self.list(PaymentLinkSpecs.status_in(*statuses), order_by=("-created_at",))

    async def active(self, now: datetime | None = None) -> builtins.list[PaymentLink]:
        """Return the active links not expired at ``now`` (default: the transaction time)."""
        return await self.list(PaymentLinkSpecs.active_at(now), order_by=("-created_at",))

    async def expiring_before(self, when: datetime) -> builtins.list[PaymentLink]:
        """Return the active links expiring before ``when``, soonest first."""
        return await self.list(PaymentLinkSpecs.expiring_before(when), order_by=("expires_at",))

    async def expire_overdue(self, now: datetime | None = None) -> int:
        """Mark every active link whose expiry has passed as expired; return how many.

        One UPDATE statement; its RETURNING gives the ids for one
        ``PaymentLinkExpired`` event per link.
        """
        statement = (
            update(PaymentLink)
            .where(PaymentLinkSpecs.overdue(now).to_clause())
            .values(status=PaymentLinkStatus.EXPIRED.value)
            .returning(PaymentLink.id)
            .execution_options(synchronize_session="fetch")
        )
        ids = builtins.list((await self._execute(statement)).scalars())
        self.loose_events.extend(PaymentLinkExpired(aggregate_id=str(i)) for i in ids)
        return len(ids)

    async def record_use(self, link_id: uuid.UUID) -> PaymentLink:
        """Count one use of a link, atomically, and raise ``PaymentLinkUsed``.

        A single conditional UPDATE both checks and increments, so concurrent last
        uses serialize on the row lock: a waiter re-checks the condition against
        the winner's committed row and matches nothing.

        Raises:
            NotFound: no such link in this tenant.
            PaymentLinkExhausted: it has been used ``max_uses`` times.
            PaymentLinkUnavailable: it is inactive or expired.
        """
        statement = (
            update(PaymentLink)
            .where(
                PaymentLink.id == link_id,
                PaymentLink.status == PaymentLinkStatus.ACTIVE.value,
                or_(PaymentLink.expires_at.is_(None), PaymentLink.expires_at > func.now()),
                or_(PaymentLink.max_uses.is_(None), PaymentLink.use_count < PaymentLink.max_uses),
            )
            .values(use_count=PaymentLink.use_count + 1)
            .returning(PaymentLink)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        link: PaymentLink | None = (await self._execute(statement)).scalars().first()
        if link is None:
            raise await self._why_unusable(link_id)
        link.record_event(PaymentLinkUsed(aggregate_id=str(link.id), use_count=link.use_count))
        return self._see(link)

    async def _why_unusable(self, link_id: uuid.UUID) -> Exception:
        # Only after the conditional UPDATE matched nothing: explain it from the
        # committed row, never decide from it.
        statement = (
            select(PaymentLink, func.now())
            .where(PaymentLink.id == link_id)
            .execution_options(populate_existing=True)
        )
        row = (await self._execute(statement)).first()
        if row is None:
            return NotFound(f"PaymentLink {link_id} not found")
        link, now = row
        if link.status != PaymentLinkStatus.ACTIVE.value:
            return PaymentLinkUnavailable(f"payment link {link_id} is {link.status}")
        if link.expires_at is not None and link.expires_at <= now:
            return PaymentLinkUnavailable(f"payment link {link_id} has expired")
        if link.max_uses is not None and link.use_count >= link.max_uses:
            return PaymentLinkExhausted(f"payment link {link_id} has no uses left")
        return Conflict(f"payment link {link_id} changed concurrently; retry")


def _max_uses(value: object) -> int:
    # An int column: 1.5 would be stored as 2, True as 1, 2**31 would overflow.
    return require_int(value, "max_uses", minimum=1, maximum=2**31 - 1)
