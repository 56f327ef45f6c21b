"""A series of interrupted units of work of B, each followed by A's check on the same pool.

After each interrupted one, B first commits once more on whatever was left (a
commit that returns must persist), then A runs its check (see ``tenants``). A
``Tally`` keeps the counts the assertions report: how many of B's units of work
were really interrupted, and after which of them something went wrong. After a
problem the pool is replaced and A's expectations are re-read from the table, so
that every attempt starts clean and the counts are independent.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy import Database, TenancySettings
from tests.cancellation.stepper import Landing, drive
from tests.cancellation.tenants import CHECK_TIMEOUT_S, Tenant, Witness, stored_customer_ids
from tests.cancellation.workloads import Workload, insert_and_commit

#: Suspension points tried per deterministic series, at most.
MAX_POINTS = 150
#: A waits this long for the one connection: longer means B's unit of work kept it.
POOL_TIMEOUT_S = 2.0


def one_connection(settings: TenancySettings) -> TenancySettings:
    """Return ``settings`` with a pool of exactly one connection (size 1, no overflow)."""
    return settings.model_copy(
        update={"pool_size": 1, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT_S}
    )


@dataclass(repr=False)
class Tally:
    """Counts of one series: attempts, interruptions, and what went wrong after which."""

    attempts: int = 0
    interrupted: int = 0
    problems: list[tuple[object, str]] = field(default_factory=list)
    #: B's customers whose commit() returned: each must be in the table.
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    lost: set[uuid.UUID] = field(default_factory=set)

    @property
    def clean(self) -> bool:
        """Whether nothing went wrong (and something was interrupted at all)."""
        return self.interrupted > 0 and not self.problems and not self.lost

    def __repr__(self) -> str:
        return f"<Tally: {len(self.problems)} problems in {self.interrupted} interruptions>"

    def report(self) -> str:
        """Describe the problems, counted against the interruptions."""
        first = f"; first after {self.problems[0][0]}" if self.problems else ""
        lines = [
            f"problems after {len(self.problems)} of {self.interrupted} interrupted units of "
            f"work of B ({self.attempts} attempts{first}); "
            f"{len(self.lost)} of B's {len(self.acknowledged)} acknowledged commits lost"
        ]
        # Counted by kind: the numbers in a problem's text do not make it another kind.
        kinds = Counter(re.sub(r"\d+", "N", problem) for _, problem in self.problems)
        lines += [f"  {count} x {problem}" for problem, count in kinds.most_common(6)]
        return "\n".join(lines)

    async def record(
        self, db: Database, witness: Witness, b: Tenant, point: object, error: BaseException | None
    ) -> None:
        """Record how B ended at ``point``; then B commits once more and A checks, same pool."""
        self.attempts += 1
        if error is None:
            return  # B finished before the interruption: nothing to check
        self.interrupted += 1
        problem = (
            _unexpected(error) or await self._next_commit_of(db, b) or await witness.problem(db)
        )
        if problem is not None:
            self.problems.append((point, problem))
            # The next attempt starts on a new connection, whatever this one holds,
            # and from what A really has.
            await db.engine.dispose()
            await witness.resync()

    async def _next_commit_of(self, db: Database, b: Tenant) -> str | None:
        # Runs on whatever B's cancelled unit of work left; its commit must be real.
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await insert_and_commit(db, b, self.acknowledged)
        except Exception as exc:  # any error is a finding, reported by its type
            return f"B's next unit of work raised {type(exc).__name__}: {exc}"[:200]
        return None

    async def check_commits(self, superuser: AsyncEngine, b: Tenant) -> Tally:
        """Note B's acknowledged commits that are not in the table; return self."""
        self.lost = set(self.acknowledged) - await stored_customer_ids(superuser, b.org_id)
        return self


def _unexpected(error: BaseException) -> str | None:
    if isinstance(error, asyncio.CancelledError | TimeoutError):
        return None
    return f"B ended with {type(error).__name__}: {error}, not with its cancellation"[:200]


async def cancel_at_each_suspension(
    db: Database,
    witness: Witness,
    b: Tenant,
    workload: Workload,
    *,
    landing: Landing = Landing.WHILE_WAITING,
    again: bool = False,
    cold: bool = False,
) -> Tally:
    """Run ``workload`` once per suspension point, cancelled there; A checks after each.

    ``again`` cancels every later suspension too (the cleanup's awaits); ``cold``
    empties the pool first, so that the checkout opens the connection.
    """
    tally = Tally()
    if cold:
        await db.engine.dispose()
    clean = await drive(workload(db, b, tally.acknowledged))
    if clean.error is not None:
        raise AssertionError(f"B's uninterrupted unit of work failed: {clean.error!r}")
    for point in range(min(clean.suspensions, MAX_POINTS)):
        if cold:
            await db.engine.dispose()
        coro = workload(db, b, tally.acknowledged)
        run = await drive(coro, cancel_at=point, landing=landing, again=again)
        await tally.record(db, witness, b, f"suspension {point} of {clean.suspensions}", run.error)
    return await tally.check_commits(witness.superuser, b)


Interrupt = Callable[[asyncio.Task[None]], str]


async def interrupt_tasks(
    db: Database,
    witness: Witness,
    b: Tenant,
    workload: Workload,
    *,
    attempts: int,
    interrupt: Interrupt = lambda task: "",
    wrap: Callable[[Coroutine[Any, Any, None]], Coroutine[Any, Any, None]] = lambda c: c,
) -> Tally:
    """Run ``workload`` as a real task ``attempts`` times; A checks after each interrupted one.

    ``interrupt`` arranges the task's cancellation and describes it (" after 12 us"); ``wrap``
    surrounds the workload (with ``asyncio.timeout``, say).
    """
    tally = Tally()
    for attempt in range(attempts):
        task = asyncio.create_task(wrap(workload(db, b, tally.acknowledged)))
        how = interrupt(task)
        await asyncio.wait([task])
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        await tally.record(db, witness, b, f"attempt {attempt}{how}", error)
    return await tally.check_commits(witness.superuser, b)
