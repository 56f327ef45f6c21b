"""The payments platform's own errors, in the one ``tenancy`` hierarchy.

Raised by the repositories and the wallet service; each subclasses the
mechanism's class a caller already handles (``Conflict``, ``InvalidData``, ...).
"""

from __future__ import annotations

from tenancy.errors import Conflict, InvalidData, TenancyError


class ChainError(TenancyError):
    """The chain node could not be reached or answered something unusable."""


class TransactionRejected(ChainError):
    """The chain node refused a transaction (insufficient funds, bad nonce, ...)."""


class PaymentLinkExhausted(Conflict):
    """A payment link has already been used its maximum number of times."""


class PaymentLinkUnavailable(Conflict):
    """A payment link is inactive or expired, so it cannot be used."""


class IdempotencyKeyReused(Conflict):
    """An idempotency key was sent again with different order parameters."""


class InvalidTransition(InvalidData):
    """A status change the lifecycle does not allow (e.g. ``refunded`` -> ``paid``)."""


class LastOwnerError(Conflict):
    """The change would leave the organization without an owner."""
