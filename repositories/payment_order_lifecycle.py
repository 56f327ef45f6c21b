"""The payment order lifecycle: which status may follow which.

::

    pending    -> authorized | failed | cancelled
    authorized -> paid | failed | cancelled
    paid       -> refunded
    refunded, failed, cancelled: terminal

An authorization can still fail (capture declined) or be cancelled (voided),
so ``authorized`` may move to ``failed`` or ``cancelled`` as well. ``pending``
cannot jump to ``paid``: every capture is authorized first. ``refunded``,
``failed`` and ``cancelled`` are terminal. Moving to the same status is not a
transition and is refused, so a replayed request cannot raise a second event.
"""

from __future__ import annotations

from collections.abc import Mapping

from repositories.errors import InvalidTransition
from repositories.models.enums import PaymentOrderStatus as Status
from repositories.validation import statuses_of

ALLOWED_TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.AUTHORIZED, Status.FAILED, Status.CANCELLED}),
    Status.AUTHORIZED: frozenset({Status.PAID, Status.FAILED, Status.CANCELLED}),
    Status.PAID: frozenset({Status.REFUNDED}),
    Status.REFUNDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def check_transition(old: str, new: str) -> Status:
    """Return ``new`` as a status if the lifecycle allows ``old`` -> ``new``.

    Raises:
        InvalidData: ``new`` is not a known status.
        InvalidTransition: the lifecycle does not allow the move.
    """
    (checked,) = statuses_of(Status, [new])
    target = Status(checked)
    if target not in ALLOWED_TRANSITIONS[Status(old)]:
        raise InvalidTransition(f"a payment order cannot move from {old} to {new}")
    return target


def is_terminal(status: str) -> bool:
    """Return whether no transition leaves ``status``."""
    return not ALLOWED_TRANSITIONS[Status(status)]
