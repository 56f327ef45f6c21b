"""What the relay tells people: failed sends, dead letters, and aggregates they block.

Every record names the event and its organization (``org_id``, ``event_id``
extras), so a dead letter can be found and acted on with ``tenancy relay``.
"""

from __future__ import annotations

from tenancy.log import get_logger
from tenancy.relay.admin import BlockedAggregate
from tenancy.relay.claims import Retry

logger = get_logger("tenancy.relay.worker")


def log_failure(retry: Retry) -> None:
    """Log a failed send: WARNING with the retry delay, or ERROR and a blocked WARNING if dead."""
    event = retry.failure.event
    extra = {"org_id": str(event.org_id), "event_id": str(event.id)}
    if retry.dead:
        logger.error(
            "event %s of org %s (%s) dead-lettered after %d attempt(s): %s",
            event.id,
            event.org_id,
            event.event_type,
            retry.attempts,
            retry.failure.error,
            extra=extra,
        )
        logger.warning(
            "aggregate %s %s of org %s is blocked behind dead event %s: its later events "
            "wait until it is re-queued or discarded (tenancy relay requeue|discard %s)",
            event.aggregate_type,
            event.aggregate_id,
            event.org_id,
            event.id,
            event.id,
            extra=extra,
        )
    else:
        logger.warning(
            "publishing event %s of org %s (%s) failed, retry in %.1fs: %s",
            event.id,
            event.org_id,
            event.event_type,
            retry.delay,
            retry.failure.error,
            extra=extra,
        )


def log_blocked(aggregate: BlockedAggregate) -> None:
    """Log, at WARNING, an aggregate held back by a dead event and how many events wait."""
    logger.warning(
        "aggregate %s %s of org %s is blocked behind dead event %s; %d later event(s) "
        "wait (tenancy relay requeue|discard %s)",
        aggregate.aggregate_type,
        aggregate.aggregate_id,
        aggregate.org_id,
        aggregate.dead_id,
        aggregate.waiting,
        aggregate.dead_id,
        extra={"org_id": str(aggregate.org_id), "event_id": str(aggregate.dead_id)},
    )
