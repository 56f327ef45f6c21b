"""Server restarts under concurrent load: no acknowledged commit lost or doubled, quick recovery.

Workers commit customers with client-generated ids in a loop and record every
commit that returned normally. Meanwhile the server is restarted twice: once
with a fast stop, once by SIGKILL of the postmaster (crash recovery). Afterwards,
as the superuser, every acknowledged id must be there exactly once, with exactly
one outbox event.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tenancy import Database, TenancyError
from tests.faults.conftest import OpenDatabase
from tests.faults.support import FaultDatabase, customer, new_organization

WORKERS = 30
ORGANIZATIONS = 5
#: Acknowledged commits to wait for before each restart and after the last one.
ACKS_PER_PHASE = 150
#: Generous bound on recovery after the server accepts connections again.
RECOVERY_BOUND = 10.0
#: Bound on any wait of the test itself (for acknowledgements, for the workers to stop).
WAIT_BOUND = 30.0


@dataclass
class Load:
    """What the workers saw."""

    attempted: list[uuid.UUID] = field(default_factory=list)
    #: (id, when its unit of work started, when its commit returned)
    acknowledged: list[tuple[uuid.UUID, float, float]] = field(default_factory=list)
    typed_errors: Counter[str] = field(default_factory=Counter)
    untyped_errors: Counter[str] = field(default_factory=Counter)
    #: The first message seen of each error type (the report shows it).
    samples: dict[str, str] = field(default_factory=dict)

    def acknowledged_ids(self) -> list[uuid.UUID]:
        return [ack[0] for ack in self.acknowledged]

    def first_ack_started_after(self, moment: float) -> float | None:
        done = [finished for _, started, finished in self.acknowledged if started >= moment]
        return min(done) if done else None


async def worker(db: Database, org_id: uuid.UUID, load: Load, stop: asyncio.Event) -> None:
    deadline = time.monotonic() + 3 * WAIT_BOUND
    while not stop.is_set() and time.monotonic() < deadline:
        added = customer()
        load.attempted.append(added.id)
        started = time.monotonic()
        try:
            async with db.unit_of_work(org_id) as uow:
                await uow.customers.add(added)
                await uow.commit()
        except TenancyError as exc:
            load.typed_errors[type(exc).__name__] += 1
            load.samples.setdefault(type(exc).__name__, str(exc)[:120])
        except Exception as exc:  # an untyped error is what the test reports
            name = f"{type(exc).__module__}.{type(exc).__name__}"
            load.untyped_errors[name] += 1
            load.samples.setdefault(name, str(exc)[:120])
        else:
            load.acknowledged.append((added.id, started, time.monotonic()))
            continue
        await asyncio.sleep(0.02)  # back off while the server is away


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {WAIT_BOUND:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)


async def test_restarts_under_load_lose_and_double_no_acknowledged_commit(
    open_database: OpenDatabase, fault_db: FaultDatabase
) -> None:
    db: Database = await open_database(
        pool_size=WORKERS, max_overflow=10, pool_timeout=5.0, connect_timeout=2.0
    )
    orgs = [await new_organization(db) for _ in range(ORGANIZATIONS)]
    server = fault_db.server
    load, stop = Load(), asyncio.Event()
    tasks = [
        asyncio.create_task(worker(db, orgs[i % ORGANIZATIONS], load, stop)) for i in range(WORKERS)
    ]
    recoveries: dict[str, float | None] = {}
    try:
        for label, fault in (
            ("fast restart", server.restart),
            ("postmaster SIGKILL + start", lambda: (server.kill_postmaster(), server.start())),
        ):
            target = len(load.acknowledged) + ACKS_PER_PHASE
            await wait_for(lambda t=target: len(load.acknowledged) >= t, "commits under load")
            down = time.monotonic()
            await asyncio.to_thread(fault)  # the workers go on meanwhile
            ready = time.monotonic()
            try:
                await wait_for(lambda r=ready: load.first_ack_started_after(r) is not None, label)
            except AssertionError:
                recoveries[label] = None
            else:
                first = load.first_ack_started_after(ready)
                assert first is not None
                recoveries[label] = first - ready
            print(f"\n{label}: server away {ready - down:.2f} s", end="")
        target = len(load.acknowledged) + ACKS_PER_PHASE
        await wait_for(lambda: len(load.acknowledged) >= target, "commits after the restarts")
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=WAIT_BOUND)
        for task in pending:
            task.cancel()

    acknowledged = load.acknowledged_ids()
    rows = await fault_db.customer_counts(load.attempted)
    events = await fault_db.outbox_counts(load.attempted)
    unacknowledged_present = len(set(rows) - set(acknowledged))
    rounded = {k: None if v is None else round(v, 3) for k, v in recoveries.items()}
    print(
        f"\nworkers {WORKERS}: attempted {len(load.attempted)}, acknowledged {len(acknowledged)},"
        f" present {len(rows)} (of them not acknowledged: {unacknowledged_present});"
        f" errors {dict(load.typed_errors)}, untyped {dict(load.untyped_errors)};"
        f" recovery after ready {rounded}"
        f"\nfirst message of each error type: {load.samples}"
    )
    assert not pending, f"{len(pending)} workers did not stop within {WAIT_BOUND:.0f} s"
    lost = [i for i in acknowledged if rows[i] == 0]
    doubled = [i for i, n in rows.items() if n > 1]
    assert (len(lost), len(doubled)) == (0, 0), f"lost {len(lost)}, doubled {len(doubled)}"
    mismatched = [i for i in load.attempted if (rows[i], events[i]) not in ((0, 0), (1, 1))]
    assert mismatched == [], f"{len(mismatched)} rows without exactly one event (or the reverse)"
    assert dict(load.untyped_errors) == {}, "errors outside the TenancyError hierarchy"
    slow = {k: v for k, v in recoveries.items() if v is None or v >= RECOVERY_BOUND}
    assert slow == {}, f"no recovery within {RECOVERY_BOUND:.0f} s: {slow}"
