"""The transactional outbox, relay side: claim, settle and retain outbox rows.

The relay connects as tenancy_relay (BYPASSRLS, privileges on this table only)
and never advances a cursor ("ids above the last seen" skips a row whose
transaction commits late): a row is claimable while it is pending and its
``available_at`` has passed. Claiming moves ``available_at`` to the end of the
lease, so one condition covers "never tried", "lease of a crashed relay ran out"
and "back-off elapsed".

Every statement here also runs on a Citus coordinator with ``outbox_events``
distributed by tenant: the relays connect to the coordinator, which holds the
claim lock and delivers the writers' notifications.

Order per aggregate, with any number of relays:

* claims are serialized by a transaction-scoped advisory lock (a claim is one
  short statement; sending and settling still run in parallel), so a claim
  always sees the leases of the claims before it;
* an aggregate with any pending row that is not claimable (leased elsewhere, or
  backing off) or with a dead row is skipped entirely, so its later events cannot
  overtake; a dead row holds its aggregate until an operator re-queues or
  discards it (``tenancy.relay.admin``);
* a claim takes rows in (occurred_at, position) order, so with an aggregate's
  later row it also takes every earlier one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.errors import translated
from tenancy.events.outbox_table import OutboxStatus
from tenancy.relay.settings import RelaySettings

#: Any fixed bigint; advisory locks are per database. ("tenancy" in ASCII.)
CLAIM_LOCK_KEY = 0x74656E616E6379

# The lock is a statement of its own: the claim's snapshot is taken after it. The
# claim's planner settings ride along (set_config(..., true) is SET LOCAL):
# * A queue table churns faster than autovacuum refreshes its statistics: right
#   after a backlog drains, the planner still believes every row is pending and
#   scans the whole table on each claim. The partial index on pending rows is
#   always the right path for a claim, so no table scan.
# * No bitmap scans either. Every event leaves two dead entries in that index
#   (its insert and its claim), and until vacuum removes them each claim walks
#   them all; a bitmap scan visits their heap rows every time, a plain index scan
#   marks them dead on the first visit and skips them after (measured: 15x fewer
#   buffers per claim a few thousand events after a vacuum).
# * Enough memory to hash the blocked aggregates (see _CLAIM), however many are dead.
# * A plan made for this claim, never a cached generic one (see _SETTLE_PLANNING).
_CLAIM_LOCK = text(
    "SELECT pg_advisory_xact_lock(:key),"
    " set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),"
    " set_config('work_mem', '64MB', true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# The relay's statements are prepared once per connection (asyncpg), and after five
# runs Postgres may settle on a generic plan, made for whatever size the outbox had
# then, and keep it until the next ANALYZE. A relay started on a small outbox kept
# such a plan while a burst grew it: each claim found its batch's rows through the
# index on (org_id, occurred_at), reading all of an organization's rows once per
# event of the batch (at 500 events/s, claims took 0.3 s after five seconds and 2 s
# after ten; planned each time, the relay kept up, 23 ms p99 from commit to send).
# Planning a claim costs about a millisecond. Recording an outcome is planned each
# time too, and never scans the table: it names at most a batch of rows by key, and
# the planner prefers a scan only while it believes the outbox small, which an
# outbox does not stay.
_SETTLE_PLANNING = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('enable_seqscan', 'off', true)"
)
# Candidates are checked against the blocked aggregates with NOT IN, which Postgres
# runs as a hashed subplan (the columns are NOT NULL, so NOT IN means NOT EXISTS).
# NOT EXISTS lets the planner pick a nested-loop anti join whenever it believes
# both sides tiny, and with stale statistics it does: a relay that fell a little
# behind then compared every candidate with every leased row, its claims grew
# quadratically (1 s at 2,000 pending rows, 5 s at 5,000; hashed: 12 ms), and it
# fell further behind.
# The UPDATE checks claimability again: Postgres re-evaluates an UPDATE's
# conditions on the latest version of a row changed since its snapshot, so a row
# settled meanwhile (by a relay whose lease ran out) is left alone. It compares the
# status with the candidate's, never with the literal 'pending' (see _PENDING_KEYS),
# so that it reaches the candidates by primary key. It takes no
# row locks before (FOR UPDATE SKIP LOCKED, which Citus refuses across shards):
# claims are serialized anyway, and the only other writers of pending rows are
# settles, short transactions a claim may wait for.
_CLAIM = text(
    """
    WITH blocked AS (
        SELECT org_id, aggregate_type, aggregate_id
        FROM outbox_events
        WHERE status = 'pending' AND available_at > statement_timestamp()
        UNION ALL
        SELECT org_id, aggregate_type, aggregate_id
        FROM outbox_events
        WHERE status = 'dead'
    ), candidates AS (
        SELECT o.org_id, o.id, o.status
        FROM outbox_events AS o
        WHERE o.status = 'pending'
          AND o.available_at <= statement_timestamp()
          AND (o.org_id, o.aggregate_type, o.aggregate_id) NOT IN (
              SELECT b.org_id, b.aggregate_type, b.aggregate_id FROM blocked AS b
          )
        ORDER BY o.occurred_at, o.position
        LIMIT :limit
    )
    UPDATE outbox_events AS o
    SET claimed_by = :relay_id,
        claimed_until = statement_timestamp() + make_interval(secs => :lease),
        available_at = statement_timestamp() + make_interval(secs => :lease)
    FROM candidates AS c
    WHERE o.org_id = c.org_id AND o.id = c.id
      AND o.status = c.status AND o.available_at <= statement_timestamp()
    RETURNING o.org_id, o.id, o.aggregate_type, o.aggregate_id, o.event_type,
              o.payload::text AS payload, o.attempts, o.occurred_at, o.position,
              o.trace_context
    """
)
# Statements on rows named by key reach them by primary key, and must never scan
# the partial index on pending rows to find them. Right after a backlog drains,
# the statistics say no row is pending (and stay so until the next ANALYZE, which
# on a big table a backlog of any size may never trigger): that index looks
# empty, so free to scan, and the planner joins the keys against all of it. With
# 50,000 pending rows a claim took 9.6 s instead of 40 ms (every candidate against
# every pending row) and each settle 20-50 ms. The planner considers a partial
# index only where the query's own conditions imply its predicate, so these
# statements never compare status with the literal 'pending': they compare it with
# a status carried by the keys, which Postgres re-checks on the latest version
# of a row as it would the literal. MATERIALIZED, or the literal would be folded
# back in.
_PENDING_KEYS = """
    WITH k AS MATERIALIZED (
        SELECT k.org_id, k.id, 'pending'::text AS status
        FROM unnest(CAST(:org_ids AS uuid[]), CAST(:ids AS uuid[])) AS k(org_id, id)
    )
"""
_MARK_PUBLISHED = text(
    f"""
    {_PENDING_KEYS}
    UPDATE outbox_events AS o
    SET status = 'published', published_at = statement_timestamp(),
        claimed_by = NULL, claimed_until = NULL
    FROM k
    WHERE o.org_id = k.org_id AND o.id = k.id AND o.status = k.status
    """
)
_RELEASE = text(
    f"""
    {_PENDING_KEYS}
    UPDATE outbox_events AS o
    SET available_at = statement_timestamp(), claimed_by = NULL, claimed_until = NULL
    FROM k
    WHERE o.org_id = k.org_id AND o.id = k.id
      AND o.status = k.status AND o.claimed_by = :relay_id
    """
)
# The retry times are computed in a CTE of their own: Citus refuses a STABLE
# function (statement_timestamp(), timestamptz + interval) over a column in an
# UPDATE's SET, and evaluates this one on the coordinator, once. ``was`` is the
# status the row must still have, carried by the keys (see _PENDING_KEYS).
_FAIL = text(
    """
    WITH k AS MATERIALIZED (
        SELECT k.*, statement_timestamp() + make_interval(secs => k.delay) AS retry_at,
               'pending'::text AS was
        FROM unnest(CAST(:org_ids AS uuid[]), CAST(:ids AS uuid[]), CAST(:attempts AS int[]),
                    CAST(:statuses AS text[]), CAST(:errors AS text[]),
                    CAST(:delays AS float8[]))
             AS k(org_id, id, attempts, status, error, delay)
    )
    UPDATE outbox_events AS o
    SET attempts = k.attempts, status = k.status, last_error = k.error,
        available_at = k.retry_at, claimed_by = NULL, claimed_until = NULL
    FROM k
    WHERE o.org_id = k.org_id AND o.id = k.id
      AND o.status = k.was AND o.claimed_by = :relay_id
    """
)
# Two relays deleting at once may pick the same rows: the second waits for the
# first and finds them gone (no row locks, which Citus refuses across shards).
_DELETE_PUBLISHED = text(
    """
    DELETE FROM outbox_events AS o
    USING (
        SELECT org_id, id FROM outbox_events
        WHERE status = 'published'
          AND published_at < statement_timestamp() - make_interval(secs => :age)
        LIMIT :limit
    ) AS old
    WHERE o.org_id = old.org_id AND o.id = old.id
    """
)


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """An outbox row leased to this relay; ``payload`` is the stored JSON text."""

    org_id: uuid.UUID
    id: uuid.UUID
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: str
    attempts: int
    #: The producing transaction's W3C ``traceparent``, when it was traced.
    trace_context: str | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A claimed event the broker did not acknowledge.

    A ``transient`` failure (the broker away, restarting, electing a leader) is
    not the event's fault: it is retried after ``delay`` without using up an
    attempt, however long it lasts. Any other failure (too large, invalid,
    not authorized) uses up one; the last attempt dead-letters the event.
    """

    event: ClaimedEvent
    error: str
    transient: bool = False
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Retry:
    """What happened to a failed event: when it is retried, or that it is dead."""

    failure: Failure
    attempts: int
    dead: bool
    delay: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a claimed batch, to be recorded in the outbox.

    ``published`` rows were acknowledged by the broker; ``retries`` come from
    ``RelayOutbox.plan_retry``; ``released`` rows were not sent and become
    claimable at once (behind any failed earlier event of their aggregate, which
    blocks them while it backs off or is dead).
    """

    published: Sequence[ClaimedEvent] = ()
    retries: Sequence[Retry] = ()
    released: Sequence[ClaimedEvent] = ()


class RelayOutbox:
    """The relay's statements on ``outbox_events``, run as the relay role."""

    def __init__(self, engine: AsyncEngine, settings: RelaySettings) -> None:
        self.engine = engine
        self.settings = settings

    async def claim(self, settling: Outcome | None = None) -> list[ClaimedEvent]:
        """Lease up to ``batch_size`` claimable events, oldest first.

        With ``settling`` (the previous batch's outcome), that outcome is recorded
        first, in the same transaction: a relay that goes straight on to its next
        batch pays one transaction per batch instead of two, and the claim already
        sees the previous batch's rows as settled. If the claim fails, so has the
        record of ``settling``: the caller records it again on its own.
        """
        settings = self.settings
        params = {
            "limit": settings.batch_size,
            "relay_id": settings.relay_id,
            "lease": settings.lease_seconds,
        }
        async with translated(), self.engine.begin() as connection:
            if settling is not None:
                await self._record(connection, settling)
            await connection.execute(_CLAIM_LOCK, {"key": CLAIM_LOCK_KEY})
            result = await connection.execute(_CLAIM, params)
        # RETURNING follows no ORDER BY; the relay sends in outbox order.
        rows = sorted(result.all(), key=lambda row: (row.occurred_at, row.position))
        return [
            ClaimedEvent(
                org_id=row.org_id,
                id=row.id,
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                event_type=row.event_type,
                payload=row.payload,
                attempts=row.attempts,
                trace_context=row.trace_context,
            )
            for row in rows
        ]

    def plan_retry(self, failure: Failure) -> Retry:
        """Decide the next attempt count, delay and whether ``failure`` dead-letters."""
        if failure.transient:
            return Retry(failure, failure.event.attempts, dead=False, delay=failure.delay)
        attempts = failure.event.attempts + 1
        dead = attempts >= self.settings.max_attempts
        delay = 0.0 if dead else self.settings.backoff(attempts)
        return Retry(failure, attempts, dead, delay)

    async def settle(
        self,
        published: Sequence[ClaimedEvent],
        retries: Sequence[Retry],
        released: Sequence[ClaimedEvent],
    ) -> None:
        """Record a batch's outcome (see ``Outcome``) in one transaction."""
        async with translated(), self.engine.begin() as connection:
            await self._record(connection, Outcome(published, retries, released))

    async def _record(self, connection: AsyncConnection, outcome: Outcome) -> None:
        if outcome.published or outcome.released or outcome.retries:
            await connection.execute(_SETTLE_PLANNING)
        if outcome.published:
            await connection.execute(_MARK_PUBLISHED, _keys(outcome.published))
        if outcome.released:
            params = {**_keys(outcome.released), "relay_id": self.settings.relay_id}
            await connection.execute(_RELEASE, params)
        if outcome.retries:
            await connection.execute(_FAIL, self._fail_params(outcome.retries))

    def _fail_params(self, retries: Sequence[Retry]) -> dict[str, Any]:
        return {
            **_keys([r.failure.event for r in retries]),
            "attempts": [r.attempts for r in retries],
            "statuses": [
                OutboxStatus.DEAD.value if r.dead else OutboxStatus.PENDING.value for r in retries
            ],
            # Broker messages are short; cap them anyway, the column is for people.
            "errors": [r.failure.error[:2000] for r in retries],
            "delays": [r.delay for r in retries],
            "relay_id": self.settings.relay_id,
        }

    async def delete_published(self) -> int:
        """Delete published rows older than the retention, in bounded batches."""
        params = {"age": self.settings.retention_seconds, "limit": self.settings.retention_batch}
        deleted = 0
        while True:
            async with translated(), self.engine.begin() as connection:
                count = (await connection.execute(_DELETE_PUBLISHED, params)).rowcount
            deleted += count
            if count < self.settings.retention_batch:
                return deleted


def _keys(events: Sequence[ClaimedEvent]) -> dict[str, list[uuid.UUID]]:
    return {"org_ids": [e.org_id for e in events], "ids": [e.id for e in events]}
