"""List statements compiled once per shape, run as SQL text on the driver.

A repository ``list`` call differs from the previous one mostly in values: the
filter's literals, the tenant, the cursor, the page size. Building a SQLAlchemy
``select`` for every call, generating its cache key and executing it through
Core costs more than the query itself. Here the statement for a *shape* (the
model, the filter's SQLAlchemy cache key, the sort keys and which paging parts
are present) is built and compiled once; a call only generates the filter's
cache key, which also yields the filter's current bound values in the order
SQLAlchemy's own statement cache relies on, and runs the cached text on asyncpg.

Filters that cannot be cached, and statements needing SQLAlchemy's post-compile
step (expanding ``IN`` lists, literal execution), get ``None``: the caller runs
them through Core. Pinned to SQLAlchemy 2.x (``pyproject.toml``), whose
compiler API this uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Integer, bindparam, select, tuple_
from sqlalchemy.sql import Select

from repositories.row_mapper import RowMapper
from tenancy.errors import ConfigurationError
from tenancy.internals import cache_key, needs_post_compile, positional_parameters
from tenancy.pagination import SortKey

#: Distinct shapes kept; the repositories produce a few dozen.
MAX_SHAPES = 512

_TENANT = "tenancy_tenant"
_LIMIT = "tenancy_limit"
_OFFSET = "tenancy_offset"


@dataclass(frozen=True)
class ListShape:
    """Everything of a list call but its values, beyond the filter.

    Compared and hashed by the sort keys' attributes and directions (not their
    public names, which two repositories may map differently), so it can key
    the cache together with the model.
    """

    keys: tuple[SortKey, ...] = field(compare=False)
    has_after: bool
    has_limit: bool
    has_offset: bool
    order: tuple[tuple[str, bool], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", tuple((k.column.key, k.descending) for k in self.keys))


@dataclass(frozen=True)
class _Plan:
    sql: str
    #: Per positional parameter: an index into the filter's bound parameters,
    #: or the name of one of this module's own parameters.
    sources: tuple[int | str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_PLANS: dict[Any, _Plan | None] = {}
_MISSING: Any = object()
_NO_PARAMETERS: Mapping[str, Any] = MappingProxyType({})


def list_select(
    mapper: RowMapper,
    clause: ColumnElement[bool] | None,
    shape: ListShape,
    *,
    tenant: Any,
    after: Sequence[Any] = (),
    limit: int | None = None,
    offset: int | None = None,
    entities: bool = False,
) -> Select[Any]:
    """Return the ``select`` of a list call with its values bound (the general path).

    ``entities``: select the model (the ORM loads instances) rather than its columns.
    """
    values = _own_values(tenant, after, limit, offset)
    statement, _ = _statement(mapper, clause, shape, values, entities=entities)
    return statement


def list_sql(
    mapper: RowMapper,
    clause: ColumnElement[bool] | None,
    shape: ListShape,
    *,
    tenant: Any,
    after: Sequence[Any] = (),
    limit: int | None = None,
    offset: int | None = None,
    parameters: Mapping[str, Any] = _NO_PARAMETERS,
) -> tuple[str, list[Any]] | None:
    """Return the SQL text and positional values of a list call, or ``None`` if unsupported.

    ``parameters``: values for the filter's named parameters (a prepared
    ``Specification``'s), taken in place of the values the clause was built with.

    Raises:
        ConfigurationError: a named parameter of the filter has no value.
    """
    if clause is None:
        filter_key: Any = None
        binds: Sequence[Any] = ()
    else:
        found = cache_key(clause)
        if found is None:
            return None
        filter_key, binds = found
    plan_key = (mapper.model, mapper.dialect, filter_key, shape)
    plan = _PLANS.get(plan_key, _MISSING)
    if plan is _MISSING:
        plan = _plan(mapper, clause, binds, shape)
        if len(_PLANS) >= MAX_SHAPES:
            _PLANS.clear()
        _PLANS[plan_key] = plan
    if plan is None:
        return None
    own = _own_values(tenant, after, limit, offset)
    values = []
    for source, process in zip(plan.sources, plan.processors, strict=True):
        if isinstance(source, str):
            value = own[source]
        else:
            bind = binds[source]
            value = parameters.get(bind.key, _MISSING) if parameters else _MISSING
            if value is _MISSING:
                if bind.required:
                    raise ConfigurationError(
                        f"the specification's parameter {bind.key!r} has no value; "
                        f"pass it with .bind({bind.key}=...)"
                    )
                value = bind.effective_value
        values.append(process(value) if process is not None and value is not None else value)
    return plan.sql, values


def _own_values(
    tenant: Any, after: Sequence[Any], limit: int | None, offset: int | None
) -> dict[str, Any]:
    # The values of this module's named parameters (see _statement).
    values = {_TENANT: tenant, _LIMIT: limit, _OFFSET: offset}
    values.update((_after_name(i), value) for i, value in enumerate(after))
    return values


def _after_name(position: int) -> str:
    return f"tenancy_after_{position}"


def _statement(
    mapper: RowMapper,
    clause: ColumnElement[bool] | None,
    shape: ListShape,
    values: dict[str, Any] | None = None,
    *,
    entities: bool = False,
) -> tuple[Select[Any], dict[int, str]]:
    # Tenant, cursor values, limit and offset are parameters of this module, the
    # filter keeps its own. Ours are unique (anonymous) parameters, told apart by
    # identity, never by name: a filter's bindparam("tenancy_tenant") stays the
    # filter's. Returns the statement and, by id, the names of our parameters.
    own: dict[int, str] = {}

    def parameter(name: str, type_: Any) -> Any:
        created = bindparam(name, (values or {}).get(name), type_=type_, unique=True)
        own[id(created)] = name
        return created

    statement = select(mapper.model) if entities else select(*mapper.load_columns)
    if clause is not None:
        statement = statement.where(clause)
    if mapper.tenant_column is not None:
        statement = statement.where(
            mapper.tenant_column == parameter(_TENANT, mapper.tenant_column.type)
        )
    keys = shape.keys
    if shape.has_after:
        row = tuple_(*(k.column for k in keys))
        bound = tuple_(*(parameter(_after_name(i), k.column.type) for i, k in enumerate(keys)))
        statement = statement.where(row < bound if keys[0].descending else row > bound)
    statement = statement.order_by(*(k.order_clause() for k in keys))
    if shape.has_limit:
        statement = statement.limit(parameter(_LIMIT, Integer()))
    if shape.has_offset:
        statement = statement.offset(parameter(_OFFSET, Integer()))
    return statement, own


def _plan(
    mapper: RowMapper,
    clause: ColumnElement[bool] | None,
    binds: Sequence[Any],
    shape: ListShape,
) -> _Plan | None:
    statement, own = _statement(mapper, clause, shape)
    compiled = statement.compile(dialect=mapper.dialect)
    if needs_post_compile(compiled):
        return None
    position = {id(b): i for i, b in reversed(list(enumerate(binds)))}
    sources: list[int | str] = []
    parameters = positional_parameters(compiled)
    for parameter in parameters:
        bind = parameter.bind
        if id(bind) in own:
            sources.append(own[id(bind)])
        elif id(bind) in position:
            sources.append(position[id(bind)])
        else:
            # A parameter whose value the filter's cache key does not carry.
            return None
    return _Plan(
        sql=compiled.string,
        sources=tuple(sources),
        processors=tuple(parameter.processor for parameter in parameters),
    )


__all__ = ["MAX_SHAPES", "ListShape", "list_select", "list_sql"]
