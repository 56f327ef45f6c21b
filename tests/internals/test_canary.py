"""Canary: every SQLAlchemy and asyncpg internal ``tenancy.internals`` relies on, as relied on.

One test per internal, named for it. When an upgrade renames or reshapes one,
these fail here, by name, rather than the fast paths failing somewhere else.
They run in the normal suite and in the floor run (``make test-floor``), so
both ends of the supported SQLAlchemy range are checked.
"""

from __future__ import annotations

import asyncio
import inspect as pyinspect
import ssl
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Connection, Integer, String, Table, bindparam, inspect, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, class_mapper, mapped_column
from sqlalchemy.orm.identity import IdentityMap
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.concurrency import await_only, in_greenlet

from tenancy import TenancySettings
from tenancy.internals import (
    adopt_unchanged,
    cache_key,
    commit_loaded,
    identity_class,
    needs_post_compile,
    positional_names,
    positional_parameters,
    set_identity_key,
    state_factory,
)


class _Base(DeclarativeBase):
    pass


class Widget(_Base):
    """A mapped class of the canary's own (no database needed)."""

    __tablename__ = "canary_widgets"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


def _parameters(fn: Any) -> list[str]:
    return list(pyinspect.signature(fn).parameters)


def _loaded_widget(name: str = "w") -> Widget:
    # What the row mapper does per row, through the fence.
    mapper = class_mapper(Widget)
    obj = Widget.__new__(Widget)
    state = state_factory(mapper)(obj, mapper.class_manager)
    obj.__dict__[mapper.class_manager.STATE_ATTR] = state
    row_id = uuid.uuid4()
    obj.__dict__.update(id=row_id, name=name)
    set_identity_key(state, (identity_class(mapper), (row_id,), None))
    return obj


# -- ORM instance state (tenancy.internals.identity) ----------------------------


def test_class_manager_state_constructor_builds_an_instance_state() -> None:
    manager = class_mapper(Widget).class_manager
    assert isinstance(manager._state_constructor(Widget.__new__(Widget), manager), InstanceState)


def test_mapper_identity_class_is_the_mapped_class() -> None:
    assert class_mapper(Widget)._identity_class is Widget


def test_instance_state_commit_all_takes_the_instance_dict() -> None:
    assert _parameters(InstanceState._commit_all)[:2] == ["self", "dict_"]


def test_instance_state_has_the_attributes_adoption_sets() -> None:
    slots = set(InstanceState.__slots__) if hasattr(InstanceState, "__slots__") else set()
    attributes = slots | set(vars(InstanceState))
    assert {"key", "session_id", "_instance_dict", "modified"} <= attributes


def test_identity_map_keeps_states_in_dict_and_a_weakref_to_itself() -> None:
    # WeakInstanceDict up to 2.0, _WeakInstanceDict from 2.1: found through a session.
    identity_map = Session().identity_map
    assert isinstance(identity_map, IdentityMap)
    assert isinstance(identity_map._dict, dict)
    assert identity_map._wr() is identity_map


def test_a_built_state_is_detached_with_its_identity_key() -> None:
    obj = _loaded_widget()
    state = inspect(obj)
    assert state.detached
    assert state.identity == (obj.id,)


def test_commit_loaded_leaves_no_history() -> None:
    obj = Widget(id=uuid.uuid4(), name="x")
    commit_loaded(obj)
    assert not inspect(obj).modified
    assert inspect(obj).attrs.name.history.unchanged == ["x"]


def test_adopted_instances_are_persistent_and_held_weakly() -> None:
    session = Session()
    obj = _loaded_widget()
    assert adopt_unchanged(session, [obj]) == [obj]
    assert inspect(obj).persistent
    assert session.identity_map.get(inspect(obj).key) is obj
    assert obj not in session.dirty
    key = inspect(obj).key
    del obj
    assert session.identity_map.get(key) is None  # weakly held, as the loader's


def test_adopting_a_row_already_held_returns_the_held_instance() -> None:
    session = Session()
    first = _loaded_widget()
    adopt_unchanged(session, [first])
    again = _loaded_widget()
    again.__dict__["id"] = first.id
    set_identity_key(inspect(again), inspect(first).key)
    assert adopt_unchanged(session, [again]) == [first]


# -- compiled statements (tenancy.internals.compiled) ----------------------------

_TABLE = Table("canary_things", _Base.metadata, Column("id", Integer), Column("name", String))


def test_clause_generate_cache_key_gives_key_and_bindparams() -> None:
    found = (_TABLE.c.name == "a")._generate_cache_key()
    assert found is not None
    assert hasattr(found, "key")
    assert [b.effective_value for b in found.bindparams] == ["a"]


def test_cache_key_is_shared_by_clauses_that_differ_in_values_only() -> None:
    first, second = cache_key(_TABLE.c.name == "a"), cache_key(_TABLE.c.name == "b")
    assert first is not None
    assert second is not None
    assert first[0] == second[0]
    assert [b.effective_value for b in second[1]] == ["b"]


def test_sql_compiler_has_positiontup_binds_and_bind_processors() -> None:
    compiled = select(_TABLE.c.id).where(_TABLE.c.name == "a").compile(dialect=asyncpg_dialect())
    assert isinstance(compiled, SQLCompiler)
    assert compiled.positiontup is not None
    assert isinstance(compiled.binds, dict)
    assert isinstance(compiled._bind_processors, dict)
    assert isinstance(compiled.post_compile_params, frozenset)
    assert isinstance(compiled.literal_execute_params, frozenset)


def test_positional_parameters_come_in_dollar_order() -> None:
    statement = select(_TABLE.c.id).where(
        _TABLE.c.name == bindparam("second"), _TABLE.c.id == bindparam("first", type_=Integer)
    )
    compiled = statement.compile(dialect=asyncpg_dialect())
    assert positional_names(compiled) == ("second", "first")
    assert [p.bind.key for p in positional_parameters(compiled)] == ["second", "first"]
    assert "$1" in compiled.string
    assert "$2" in compiled.string


def test_an_expanding_in_needs_post_compile() -> None:
    compiled = select(_TABLE.c.id).where(_TABLE.c.id.in_([1, 2])).compile(dialect=asyncpg_dialect())
    assert needs_post_compile(compiled)


# -- the asyncio adapter (tenancy.internals.adapter) -----------------------------


def test_greenlet_spawn_is_a_coroutine_function() -> None:
    assert pyinspect.iscoroutinefunction(greenlet_spawn)
    assert _parameters(greenlet_spawn)[0] == "fn"


def test_in_greenlet_is_false_outside_and_true_inside_greenlet_spawn() -> None:
    assert in_greenlet() is False

    async def inside() -> bool:
        return bool(await greenlet_spawn(in_greenlet))

    assert asyncio.run(inside()) is True


def test_await_only_outside_a_greenlet_raises_missing_greenlet_and_closes_the_coroutine() -> None:
    async def never_awaited() -> None:
        raise AssertionError("ran")

    coroutine = never_awaited()
    with pytest.raises(MissingGreenlet):
        await_only(coroutine)
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning


def test_queue_pool_counts_idle_connections_against_its_size() -> None:
    pool = QueuePool(lambda: None, pool_size=3)
    assert (pool.checkedin(), pool.size()) == (0, 3)


def test_connection_takes_an_already_checked_out_connection() -> None:
    assert _parameters(Connection.__init__)[:3] == ["self", "engine", "connection"]


def test_async_connection_wraps_a_sync_connection() -> None:
    assert _parameters(AsyncConnection.__init__)[:3] == ["self", "async_engine", "sync_connection"]


def test_asyncpg_dialect_sets_up_jsonb_with_a_per_dialect_coroutine() -> None:
    setup = asyncpg_dialect.setup_asyncpg_jsonb_codec
    assert pyinspect.iscoroutinefunction(setup)
    assert _parameters(setup) == ["self", "conn"]


def test_adapted_connection_exposes_the_driver_connection() -> None:
    assert isinstance(vars(AdaptedConnection)["driver_connection"], property)


# -- asyncpg ----------------------------------------------------------------------


def test_asyncpg_connect_takes_a_connection_class() -> None:
    assert "connection_class" in _parameters(asyncpg.connect)


def test_asyncpg_execute_takes_query_args_and_timeout() -> None:
    assert _parameters(asyncpg.Connection.execute) == ["self", "query", "args", "timeout"]


async def test_asyncpg_transaction_start_sends_begin_through_execute(
    settings: TenancySettings,
) -> None:
    # TenantConnection.execute appends the tenant's SET LOCAL to the BEGIN that
    # SQLAlchemy's adapter starts through asyncpg's Transaction.start().
    sent: list[str] = []

    class Recording(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no stubs
        async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
            sent.append(query)
            status: str = await super().execute(query, *args, timeout=timeout)
            return status

    url = settings.app_url().set(drivername="postgresql")
    connection = await asyncpg.connect(
        url.render_as_string(hide_password=False), connection_class=Recording
    )
    try:
        async with connection.transaction():
            pass
    finally:
        await connection.close()
    assert sent[0].startswith("BEGIN")


def test_asyncpg_negotiates_tls_with_a_protocol_looked_up_by_module_name_on_each_connect() -> None:
    # quiet_cancelled_tls_negotiation replaces the module attribute; the function
    # that builds the protocol must read it when it runs, not hold its own reference.
    from asyncpg import connect_utils

    code = connect_utils._create_ssl_connection.__code__
    nested = [const for const in code.co_consts if isinstance(const, type(code))]
    assert any("TLSUpgradeProto" in each.co_names for each in [code, *nested])
    original = asyncpg_tls_negotiation_class()
    assert _parameters(original.__init__) == [
        "self",
        "loop",
        "host",
        "port",
        "ssl_context",
        "ssl_is_advisory",
    ]
    assert _parameters(vars(original)["connection_lost"]) == ["self", "exc"]


async def test_asyncpg_tls_negotiation_keeps_the_answer_in_its_on_data_future() -> None:
    negotiation = tls_negotiation(asyncpg_tls_negotiation_class())
    assert isinstance(negotiation.on_data, asyncio.Future)
    negotiation.data_received(b"N")  # the server declines TLS; advisory, so plain text goes on
    assert negotiation.on_data.result() is False


def asyncpg_tls_negotiation_class() -> Any:
    """asyncpg's own TLS negotiation protocol, even once the quiet subclass is installed."""
    from asyncpg import connect_utils

    return next(
        cls
        for cls in connect_utils.TLSUpgradeProto.__mro__
        if cls.__module__ == connect_utils.__name__
    )


def tls_negotiation(protocol: Any) -> Any:
    """An instance of the negotiation ``protocol`` as ``sslmode=prefer`` builds it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return protocol(asyncio.get_running_loop(), "127.0.0.1", 5432, context, True)
