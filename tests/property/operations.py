"""Repository operations the isolation machine draws, and how each runs in its own unit of work.

Every operation opens a unit of work for its tenant and goes through the public
repository API (``uow.customers`` / ``uow.products``). The outcome records what
came back, with each row's ``org_id``, so the machine can compare it with its model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from repositories.models import Customer, Product
from tenancy import Database, NotFound
from tenancy.specification import Specification

KINDS = ("customers", "products")

#: Few names, shared by all tenants: a name query that ignored the tenant would
#: find other tenants' rows with the same name.
NAMES = ("alpha", "beta", "gamma")

#: Operations on a whole (tenant, kind) slot: nothing else may touch the slot in the same step.
SLOT_OPERATIONS = frozenset({"list", "spec", "count", "update_where"})
#: Operations on one own row.
ROW_OPERATIONS = frozenset({"get", "update", "delete"})
#: Operations a tenant runs against another tenant's row (or its own deleted one).
FOREIGN_OPERATIONS = frozenset({"get_foreign", "update_foreign", "delete_foreign", "get_gone"})


@dataclass(frozen=True)
class Operation:
    """One repository call by tenant ``org`` on ``kind``."""

    action: str
    org: uuid.UUID
    kind: str
    target: uuid.UUID | None = None
    name: str | None = None
    new_name: str | None = None

    def __str__(self) -> str:
        return f"{self.action}({self.kind}, org={str(self.org)[:8]}, name={self.name})"


@dataclass(frozen=True)
class Row:
    """A row as a tenant saw it."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str


@dataclass
class Outcome:
    """What an operation returned: rows seen, a count, or that nothing was found."""

    rows: list[Row] = field(default_factory=list)
    count: int | None = None
    not_found: bool = False


def _new(kind: str, name: str) -> Any:
    if kind == "customers":
        return Customer(email=f"{uuid.uuid4().hex}@prop.test", name=name)
    return Product(name=name)


def _model(kind: str) -> Any:
    return Customer if kind == "customers" else Product


def _row(obj: Any) -> Row:
    return Row(obj.id, obj.org_id, obj.name)


async def execute(db: Database, op: Operation) -> Outcome:
    """Run ``op`` in its own unit of work for ``op.org``; writes commit."""
    model = _model(op.kind)
    async with db.unit_of_work(op.org) as uow:
        repository = getattr(uow, op.kind)
        try:
            return await _dispatch(uow, repository, model, op)
        except NotFound:
            return Outcome(not_found=True)


async def _dispatch(uow: Any, repository: Any, model: Any, op: Operation) -> Outcome:
    action = op.action
    if action == "create":
        created = await repository.add(_new(op.kind, op.name or NAMES[0]))
        await uow.commit()
        return Outcome(rows=[_row(created)])
    if action in ("get", "get_foreign", "get_gone"):
        return Outcome(rows=[_row(await repository.get(op.target))])
    if action == "list":
        return Outcome(rows=[_row(o) for o in await repository.list()])
    if action == "spec":
        spec = Specification[Any](model.name == op.name)
        return Outcome(rows=[_row(o) for o in await repository.list(spec)])
    if action == "count":
        return Outcome(count=await repository.count(Specification[Any](model.name == op.name)))
    if action in ("update", "update_foreign"):
        updated = await repository.update(op.target, {"name": op.new_name})
        await uow.commit()
        return Outcome(rows=[_row(updated)])
    if action in ("delete", "delete_foreign"):
        await repository.delete(op.target)
        await uow.commit()
        return Outcome()
    if action == "update_where":
        spec = Specification[Any](model.name == op.name)
        changed = await repository.update_where(spec, {"name": op.new_name})
        await uow.commit()
        return Outcome(count=changed)
    raise ValueError(f"unknown operation {action!r}")


async def snapshot(db: Database, org: uuid.UUID) -> dict[str, list[Row]]:
    """Return every row of every kind that ``org`` can see, in one unit of work."""
    async with db.unit_of_work(org) as uow:
        return {kind: [_row(o) for o in await getattr(uow, kind).list()] for kind in KINDS}
