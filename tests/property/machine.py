"""The isolation state machine: random concurrent repository operations over three tenants.

Each step draws a batch of operations and runs them at once (``asyncio.gather``)
on the helper loop, each in its own unit of work, so their transactions
interleave on the pool. The machine keeps a model of what each tenant owns. It
checks every outcome against the model, and after every step checks that each
tenant sees exactly its own rows, and never a row of another.

Operations in one batch never race on the same row or on a whole (tenant, kind)
slot, so the model stays exact; tenants always run side by side.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from repositories.models import Organization
from tenancy import Database
from tests.property.loop_thread import LoopThread
from tests.property.operations import (
    FOREIGN_OPERATIONS,
    KINDS,
    NAMES,
    ROW_OPERATIONS,
    SLOT_OPERATIONS,
    Operation,
    Outcome,
    execute,
    snapshot,
)

#: Drawn uniformly; repeats weight the mix towards writes and cross-tenant attempts.
ACTIONS = (
    "create",
    "create",
    "create",
    "get",
    "get_foreign",
    "get_gone",
    "list",
    "spec",
    "count",
    "update",
    "update_foreign",
    "delete",
    "delete_foreign",
    "update_where",
)

TENANTS = 3
MAX_BATCH = 6

Model = dict[uuid.UUID, dict[str, dict[uuid.UUID, str]]]


async def _create_orgs(db: Database, count: int) -> list[uuid.UUID]:
    orgs = [uuid.uuid4() for _ in range(count)]
    for org in orgs:
        async with db.session(org) as session:
            session.add(Organization(id=org, name="property"))
    return orgs


class TenantIsolationMachine(RuleBasedStateMachine):
    """Bind ``loop`` and ``db`` in a subclass (see ``machine_for``) before running."""

    loop: ClassVar[LoopThread]
    db: ClassVar[Database]

    def __init__(self) -> None:
        super().__init__()
        self.orgs = self.loop.run(_create_orgs(self.db, TENANTS))
        self.model: Model = {org: {kind: {} for kind in KINDS} for org in self.orgs}
        self.gone: dict[uuid.UUID, dict[str, list[uuid.UUID]]] = {
            org: {kind: [] for kind in KINDS} for org in self.orgs
        }

    # -- drawing -----------------------------------------------------------------

    def _draw(
        self, data: st.DataObject, action: str, org: uuid.UUID, kind: str
    ) -> Operation | None:
        own = list(self.model[org][kind])
        if action == "create":
            return Operation(action, org, kind, name=data.draw(st.sampled_from(NAMES)))
        if action in ("spec", "count", "list"):
            return Operation(action, org, kind, name=data.draw(st.sampled_from(NAMES)))
        if action == "update_where":
            old, new = data.draw(st.sampled_from(NAMES)), data.draw(st.sampled_from(NAMES))
            return Operation(action, org, kind, name=old, new_name=new)
        if action in ROW_OPERATIONS:
            if not own:
                return None
            target = data.draw(st.sampled_from(own))
            return Operation(action, org, kind, target, new_name=data.draw(st.sampled_from(NAMES)))
        if action == "get_gone":
            gone = self.gone[org][kind]
            return Operation(action, org, kind, data.draw(st.sampled_from(gone))) if gone else None
        foreign = [row for other in self.orgs if other != org for row in self.model[other][kind]]
        if not foreign:
            return None
        return Operation(action, org, kind, data.draw(st.sampled_from(foreign)), new_name="stolen")

    def _batch(self, data: st.DataObject) -> list[Operation]:
        batch: list[Operation] = []
        whole: set[tuple[uuid.UUID, str]] = set()
        used: set[tuple[uuid.UUID, str]] = set()
        rows: set[uuid.UUID] = set()
        for _ in range(data.draw(st.integers(1, MAX_BATCH), label="batch size")):
            org = data.draw(st.sampled_from(self.orgs), label="tenant")
            kind = data.draw(st.sampled_from(KINDS), label="kind")
            op = self._draw(data, data.draw(st.sampled_from(ACTIONS), label="action"), org, kind)
            if op is None:
                continue
            slot = (org, kind)
            if op.action in FOREIGN_OPERATIONS:
                batch.append(op)  # sees nothing of the slot it targets, races with nothing
            elif op.action in SLOT_OPERATIONS and slot not in used:
                whole.add(slot)
                used.add(slot)
                batch.append(op)
            elif op.action not in SLOT_OPERATIONS and slot not in whole and op.target not in rows:
                used.add(slot)
                if op.target is not None:
                    rows.add(op.target)
                batch.append(op)
        return batch

    # -- the step ----------------------------------------------------------------

    @rule(data=st.data())
    def run_concurrent_batch(self, data: st.DataObject) -> None:
        """Run a batch of operations of several tenants at once and check each outcome."""
        batch = self._batch(data)

        async def run_all() -> list[Outcome]:
            return list(await asyncio.gather(*(execute(self.db, op) for op in batch)))

        for op, outcome in zip(batch, self.loop.run(run_all()), strict=True):
            self._check(op, outcome)

    def _check(self, op: Operation, outcome: Outcome) -> None:
        rows = self.model[op.org][op.kind]
        for row in outcome.rows:
            assert row.org_id == op.org, f"{op} saw a row of {row.org_id}"
        if op.action in FOREIGN_OPERATIONS:
            assert outcome.not_found, f"{op} reached a row it does not own"
        elif op.action == "create":
            [row] = outcome.rows
            rows[row.id] = row.name
        elif op.action == "get":
            assert op.target is not None
            assert [(r.id, r.name) for r in outcome.rows] == [(op.target, rows[op.target])]
        elif op.action == "list":
            assert {r.id: r.name for r in outcome.rows} == rows
        elif op.action == "spec":
            assert {r.id for r in outcome.rows} == {i for i, n in rows.items() if n == op.name}
        elif op.action == "count":
            assert outcome.count == sum(1 for n in rows.values() if n == op.name)
        elif op.action == "update":
            assert op.target is not None
            assert op.new_name is not None
            rows[op.target] = op.new_name
        elif op.action == "delete":
            assert op.target is not None
            del rows[op.target]
            self.gone[op.org][op.kind].append(op.target)
        elif op.action == "update_where":
            assert op.new_name is not None
            matching = [i for i, n in rows.items() if n == op.name]
            assert outcome.count == len(matching)
            rows.update(dict.fromkeys(matching, op.new_name))

    # -- the invariant -------------------------------------------------------------

    @invariant()
    def each_tenant_sees_exactly_its_own_rows(self) -> None:
        """Every tenant lists exactly the rows the model says it owns, all carrying its id."""

        async def all_snapshots() -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(snapshot(self.db, org) for org in self.orgs)))

        for org, seen in zip(self.orgs, self.loop.run(all_snapshots()), strict=True):
            for kind in KINDS:
                assert {row.org_id for row in seen[kind]} <= {org}, f"{kind}: foreign rows seen"
                assert {row.id: row.name for row in seen[kind]} == self.model[org][kind]


def machine_for(loop: LoopThread, db: Database) -> type[TenantIsolationMachine]:
    """Return the machine class bound to ``loop`` and ``db``."""
    return type("BoundTenantIsolationMachine", (TenantIsolationMachine,), {"loop": loop, "db": db})
