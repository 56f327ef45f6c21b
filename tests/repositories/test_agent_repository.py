"""AgentRepository and AgentSpecs: capability queries, status and role, grant and revoke."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from repositories.agent_specs import AgentSpecs
from repositories.domain_events import AgentCapabilityGranted, AgentCapabilityRevoked
from repositories.models import Agent
from repositories.unit_of_work import PlatformUnitOfWork
from tenancy import Database, InvalidData, NotFound
from tenancy.pagination import KeysetPage, OffsetPage
from tests.repositories.payments_support import (
    RecordingDispatcher,
    backend_pid,
    wait_until_blocked,
)

FLEET = {
    "payer": ("active", "buyer", ["payments:create", "payments:read"]),
    "refunder": ("active", "support", ["payments:read", "refunds:create"]),
    "reader": ("paused", "buyer", ["payments:read"]),
    "idle": ("disabled", "support", []),
}


async def add_fleet(uow: PlatformUnitOfWork) -> dict[str, uuid.UUID]:
    agents = [
        Agent(name=name, status=status, role=role, capabilities=caps)
        for name, (status, role, caps) in FLEET.items()
    ]
    await uow.agents.add_many(agents)
    return {agent.name: agent.id for agent in agents}


def names(agents: list[Agent]) -> set[str]:
    return {agent.name for agent in agents}


# -- queries -----------------------------------------------------------------------


async def test_with_all_capabilities_needs_every_one(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        found = await uow.agents.with_all_capabilities(["payments:read", "payments:create"])
        assert names(found) == {"payer"}


async def test_with_any_capability_needs_one(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        found = await uow.agents.with_any_capability(["refunds:create", "payments:create"])
        assert names(found) == {"payer", "refunder"}


async def test_with_any_of_no_capabilities_is_empty(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        assert await uow.agents.with_any_capability([]) == []


async def test_capability_queries_never_return_another_tenants_agents(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    async with db.unit_of_work(org_b) as uow:
        await add_fleet(uow)
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        assert await uow.agents.with_any_capability(["payments:read"]) == []


async def test_by_status_accepts_several(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        assert names(await uow.agents.by_status("paused", "disabled")) == {"reader", "idle"}


async def test_by_status_with_an_unknown_status_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.agents.by_status("sleeping")


async def test_by_role(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        assert names(await uow.agents.by_role("support")) == {"refunder", "idle"}


async def test_specs_compose_with_and_or_not(db: Database, org_a: uuid.UUID) -> None:
    reads = AgentSpecs.has_all_capabilities(["payments:read"])
    spec = (reads & AgentSpecs.status_in("active") & ~AgentSpecs.role_is("support")) | (
        AgentSpecs.status_in("disabled")
    )
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        assert names(await uow.agents.list(spec)) == {"payer", "idle"}
        assert await uow.agents.count(spec) == 2
        assert await uow.agents.exists(spec & AgentSpecs.role_is("buyer"))


@pytest.mark.parametrize(
    ("spec", "operator"),
    [
        (AgentSpecs.has_all_capabilities(["payments:create"]), "@>"),
        (AgentSpecs.has_any_capability(["payments:create", "refunds:create"]), "&&"),
    ],
    ids=["has_all", "has_any"],
)
async def test_capability_specs_are_served_by_the_gin_index(
    db: Database, org_a: uuid.UUID, spec: Any, operator: str
) -> None:
    async with db.unit_of_work(org_a) as uow:
        await add_fleet(uow)
        connection = await uow.session.connection()
        # Make the alternatives (a scan, then filtering every row) look expensive,
        # so the plan shows whether the index *can* take the capability condition.
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        await connection.exec_driver_sql("SET LOCAL cpu_operator_cost = 10")
        compiled = select(Agent.id).where(spec.to_clause()).compile(connection)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        result = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", params)
        plan = json.dumps(result.scalar_one())
    assert "ix_agents_org_id_capabilities" in plan
    assert f"capabilities {operator}" in index_conditions(json.loads(plan))


def index_conditions(plan: Any) -> str:
    """Return every ``Index Cond`` of an EXPLAIN (FORMAT JSON) plan, joined."""
    if isinstance(plan, list):
        return " ".join(index_conditions(item) for item in plan)
    if isinstance(plan, dict):
        own = plan.get("Index Cond", "")
        return " ".join([own, *(index_conditions(v) for v in plan.values())])
    return ""


# -- pagination ----------------------------------------------------------------------


async def test_offset_page_carries_the_total(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await uow.agents.add_many([Agent(name=f"bot-{i:02}") for i in range(7)])
        page = await uow.agents.list(order_by=["name"], page=OffsetPage(limit=3, offset=3))
        assert ([a.name for a in page.items], page.total) == (["bot-03", "bot-04", "bot-05"], 7)


async def test_keyset_cursor_walks_through_every_page(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        await uow.agents.add_many([Agent(name=f"bot-{i:02}", status="paused") for i in range(7)])
        await uow.agents.add(Agent(name="bot-active"))
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await uow.agents.list(
                AgentSpecs.status_in("paused"),
                order_by=["-name"],
                page=KeysetPage(limit=3, after=cursor),
            )
            seen.extend(a.name for a in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [f"bot-{i:02}" for i in reversed(range(7))]


async def test_an_unknown_sort_key_is_invalid(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.agents.list(order_by=["capabilities; DROP TABLE agents"])


# -- granting and revoking ----------------------------------------------------------------


async def test_add_stores_capabilities_deduplicated_and_sorted(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        agent = await uow.agents.add(Agent(name="bot", capabilities=["b", " a", "b", "a "]))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.agents.get(agent.id)).capabilities == ["a", "b"]


async def test_grant_merges_sorted_and_raises_an_event_with_only_the_new_ones(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    async with recording_db.unit_of_work(org_a) as uow:
        agent = await uow.agents.add(Agent(name="bot", capabilities=["payments:read"]))
        await uow.agents.grant(agent.id, ["refunds:create", "payments:read", "audit:read"])
        await uow.commit()
    async with recording_db.unit_of_work(org_a) as uow:
        stored = (await uow.agents.get(agent.id)).capabilities
    assert stored == ["audit:read", "payments:read", "refunds:create"]
    [granted] = recorded_events.of_type(AgentCapabilityGranted)
    assert (granted.aggregate_id, granted.capabilities) == (
        str(agent.id),
        ["audit:read", "refunds:create"],
    )


async def test_granting_held_capabilities_raises_no_event(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    async with recording_db.unit_of_work(org_a) as uow:
        agent = await uow.agents.add(Agent(name="bot", capabilities=["payments:read"]))
        await uow.agents.grant(agent.id, ["payments:read"])
        await uow.commit()
    assert recorded_events.of_type(AgentCapabilityGranted) == []


async def test_revoke_removes_and_raises_an_event_with_only_the_held_ones(
    recording_db: Database, recorded_events: RecordingDispatcher, org_a: uuid.UUID
) -> None:
    async with recording_db.unit_of_work(org_a) as uow:
        agent = await uow.agents.add(Agent(name="bot", capabilities=["a", "b", "c"]))
        revoked = await uow.agents.revoke(agent.id, ["c", "a", "never-held"])
        await uow.commit()
    assert revoked.capabilities == ["b"]
    [event] = recorded_events.of_type(AgentCapabilityRevoked)
    assert event.capabilities == ["a", "c"]


async def test_grant_to_an_agent_of_another_tenant_is_not_found(
    db: Database, org_a: uuid.UUID, org_b: uuid.UUID
) -> None:
    async with db.unit_of_work(org_b) as uow:
        theirs = await uow.agents.add(Agent(name="theirs"))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(NotFound):
            await uow.agents.grant(theirs.id, ["payments:create"])
        with pytest.raises(NotFound):
            await uow.agents.revoke(theirs.id, ["payments:create"])


@pytest.mark.parametrize("capabilities", [[], ["  "], ["x" * 65], "payments:create"])
async def test_grant_with_bad_capabilities_is_invalid(
    db: Database, org_a: uuid.UUID, capabilities: Any
) -> None:
    async with db.unit_of_work(org_a) as uow:
        agent = await uow.agents.add(Agent(name="bot"))
        with pytest.raises(InvalidData):
            await uow.agents.grant(agent.id, capabilities)


async def test_concurrent_grants_both_land(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        agent = await uow.agents.add(Agent(name="bot"))
        await uow.commit()
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def grant_b() -> None:
        async with db.unit_of_work(org_a) as uow:
            started.set_result(await backend_pid(uow.session))
            await uow.agents.grant(agent.id, ["b"])
            await uow.commit()

    async with db.unit_of_work(org_a) as uow:
        await uow.agents.grant(agent.id, ["a"])
        racer = asyncio.create_task(grant_b())
        await wait_until_blocked(db.engine, await started)
        await uow.commit()
    await racer
    async with db.unit_of_work(org_a) as uow:
        assert (await uow.agents.get(agent.id)).capabilities == ["a", "b"]
