"""Precompiled SQL and row materialisation for the repositories' hot paths.

The hot operations (``get`` by id, ``add``, and ``list`` with
``list_statement``) run straight on the driver
connection of the unit of work's transaction, with SQL compiled once per model
and dialect (the engine's own, so its options such as ``json_serializer``
apply). Values pass through SQLAlchemy's own bind and result processors for
each column type, so a row read here equals one the ORM would load.
Materialised instances are handed to the session as persistent (no SQL), so
changing them and flushing works exactly as for ORM-loaded instances.

An INSERT leaves out a column whose value is unset and that the server fills
(``server_default``), and returns what the server filled, as the ORM does with
its default ``eager_defaults="auto"`` on Postgres. A model the fast paths
cannot serve as the ORM would (a SQL-expression or sequence default, mapper or
instance listeners) is left to the ORM: see ``orm_inserts`` and ``orm_loads``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Numeric, Table, inspect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapper, class_mapper, make_transient_to_detached

from tenancy.internals import (
    INSERT_EVENTS,
    LOAD_EVENTS,
    commit_loaded,
    has_instance_listeners,
    has_mapper_listeners,
    identity_class,
    set_identity_key,
    state_factory,
)
from tenancy.schema.declarative import is_tenant_owned, is_tenant_root

#: For callers that have no engine at hand (tests of the statements themselves).
DEFAULT_DIALECT: Dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class InsertColumn:
    """How ``add`` fills one column of the INSERT."""

    key: str
    name: str
    default: Callable[[], Any] | None
    process: Processor
    #: The server fills it when the INSERT leaves it out (``server_default``).
    server_filled: bool
    #: Converts what RETURNING yields for it.
    result: Processor


@dataclass(frozen=True)
class Insert:
    """An INSERT for one set of columns, and the server-filled columns it returns."""

    sql: str
    returned: tuple[InsertColumn, ...]


@dataclass(frozen=True)
class RowMapper:
    """SQL text and value conversion for one mapped model."""

    model: type[Any]
    dialect: Dialect
    mapper: Mapper[Any]
    #: The columns a read loads: all but deferred ones (which may be unreadable).
    load_columns: tuple[Column[Any], ...]
    load_keys: tuple[str, ...]
    select_by_id: str
    table_name: str
    insert_columns: tuple[InsertColumn, ...]
    #: A column default the fast INSERT cannot evaluate (SQL expression, sequence).
    has_sql_defaults: bool
    class_manager: Any
    state_class: Callable[[Any, Any], Any]
    tenant_column: Column[Any] | None
    identity_class: type[Any]
    #: (position, processor) of the loaded columns that need a conversion.
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]
    primary_key_keys: tuple[str, ...]
    #: The identity-key tuple of a row's (converted) values.
    primary_key_of: Callable[[Sequence[Any]], tuple[Any, ...]]
    #: INSERTs by the server-filled columns they leave out.
    _inserts: dict[frozenset[str], Insert] = field(default_factory=dict, compare=False)

    def orm_inserts(self) -> bool:
        """Whether ``add`` must go through the ORM's flush to keep its semantics.

        So for a SQL-expression or sequence default, and for ``before_insert`` /
        ``after_insert`` listeners (checked per call: listeners may come later).
        """
        return self.has_sql_defaults or has_mapper_listeners(self.mapper, INSERT_EVENTS)

    def orm_loads(self) -> bool:
        """Whether reads must go through the ORM's loader, for ``load`` listeners."""
        return has_instance_listeners(self.mapper, LOAD_EVENTS)

    def insert_values(self, obj: Any) -> tuple[Insert, list[Any]]:
        """Fill Python-side defaults on ``obj``; return the INSERT and its values.

        An unset column the server fills is left out of the INSERT, which returns it.
        """
        loaded = obj.__dict__
        values = []
        omitted = []
        for column in self.insert_columns:
            value = loaded.get(column.key)
            if value is None and column.default is not None:
                value = column.default()
            if value is None and column.server_filled:
                omitted.append(column.key)
                continue
            # Every other column gets a value, None included: the instance is then
            # fully loaded once it becomes persistent, and never lazy-loads.
            loaded[column.key] = value
            process = column.process
            values.append(process(value) if process is not None and value is not None else value)
        return self._insert(frozenset(omitted)), values

    def fill_returned(self, obj: Any, insert: Insert, row: Sequence[Any] | None) -> None:
        """Put the server-filled values the INSERT returned on ``obj``."""
        if not insert.returned:
            return
        if row is None:
            raise RuntimeError("the INSERT returned no row")
        loaded = obj.__dict__
        for column, value in zip(insert.returned, row, strict=True):
            process = column.result
            loaded[column.key] = (
                process(value) if process is not None and value is not None else value
            )

    def _insert(self, omitted: frozenset[str]) -> Insert:
        found = self._inserts.get(omitted)
        if found is None:
            kept = [c for c in self.insert_columns if c.key not in omitted]
            returned = tuple(c for c in self.insert_columns if c.key in omitted)
            quote = self.dialect.identifier_preparer.quote
            names = ", ".join(quote(c.name) for c in kept)
            placeholders = ", ".join(f"${i}" for i in range(1, len(kept) + 1))
            sql = f"INSERT INTO {self.table_name} ({names}) VALUES ({placeholders})"
            if returned:
                sql += " RETURNING " + ", ".join(quote(c.name) for c in returned)
            found = self._inserts[omitted] = Insert(sql=sql, returned=returned)
        return found

    def mark_inserted(self, obj: Any) -> None:
        """Give a just-inserted instance its identity and a clean history.

        What ``make_transient_to_detached`` does for an instance whose columns
        ``insert_values`` filled, with the identity key read off the row mapper.
        """
        state = inspect(obj)
        if state.key is not None or state.session is not None:
            make_transient_to_detached(obj)  # raises SQLAlchemy's own error
        loaded = obj.__dict__
        key = (self.identity_class, tuple(loaded[k] for k in self.primary_key_keys), None)
        set_identity_key(state, key)
        commit_loaded(obj)

    def values_of(self, row: Sequence[Any], *, processed: bool) -> Sequence[Any]:
        """Return one row's values of ``load_columns`` as the ORM would load them."""
        if processed or not self.conversions:
            return row
        values = list(row)
        for i, process in self.conversions:
            if values[i] is not None:
                values[i] = process(values[i])
        return values

    def materialize_all(self, rows: Sequence[Sequence[Any]], *, processed: bool) -> list[Any]:
        """Return detached instances, with their identity keys, for rows of ``load_columns``.

        ``processed``: the values already went through the result processors.
        """
        # Values placed in __dict__ directly are the loaded (committed) state, and a
        # fresh instance has no history; giving its state the identity key is then
        # all make_transient_to_detached() would do. ClassManager.new_instance is
        # inlined: this loop runs once per row.
        model = self.model
        new: Callable[[type[Any]], Any] = model.__new__  # type: ignore[assignment]  # type.__new__ overloads
        new_state = self.state_class
        manager = self.class_manager
        state_attr = manager.STATE_ATTR
        keys = self.load_keys
        identity_class = self.identity_class
        primary_key = self.primary_key_of
        conversions = None if processed else self.conversions
        objs = []
        for row in rows:
            values = row
            if conversions:
                values = list(row)
                for i, process in conversions:
                    if values[i] is not None:
                        values[i] = process(values[i])
            obj = new(model)
            state = new_state(obj, manager)
            state.key = (identity_class, primary_key(values), None)
            loaded = obj.__dict__
            loaded[state_attr] = state
            loaded.update(zip(keys, values, strict=True))
            objs.append(obj)
        return objs


def row_mapper(model: type[Any], dialect: Dialect = DEFAULT_DIALECT) -> RowMapper:
    """Return the (cached) row mapper of ``model`` for ``dialect`` (the engine's)."""
    found = _MAPPERS.get((model, dialect))
    if found is None:
        found = _MAPPERS[model, dialect] = _build(model, dialect)
    return found


_MAPPERS: dict[tuple[type[Any], Dialect], RowMapper] = {}


def _build(model: type[Any], dialect: Dialect) -> RowMapper:
    mapper: Mapper[Any] = class_mapper(model)
    table = mapper.local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    columns = tuple(table.columns)
    keys = tuple(mapper.get_property_by_column(c).key for c in columns)
    load_columns = tuple(
        c for c in columns if not getattr(mapper.get_property_by_column(c), "deferred", False)
    )
    load_keys = tuple(mapper.get_property_by_column(c).key for c in load_columns)
    quote = dialect.identifier_preparer.quote
    load_names = ", ".join(quote(c.name) for c in load_columns)
    table_name = quote(table.name)
    tenant_column = _tenant_column(model, table)
    select_by_id = f"SELECT {load_names} FROM {table_name} WHERE id = $1"
    if tenant_column is not None:
        select_by_id += f" AND {quote(tenant_column.name)} = $2"
    from_db = tuple(_result_processor(c, dialect) for c in load_columns)
    # In the mapper's primary-key order, which is the identity key's order.
    positions = tuple(load_columns.index(c) for c in mapper.primary_key)
    return RowMapper(
        model=model,
        dialect=dialect,
        mapper=mapper,
        load_columns=load_columns,
        load_keys=load_keys,
        select_by_id=select_by_id,
        table_name=table_name,
        insert_columns=tuple(
            InsertColumn(
                key=key,
                name=column.name,
                default=_python_default(column),
                process=_bind_processor(column, dialect),
                server_filled=column.server_default is not None,
                result=_result_processor(column, dialect),
            )
            for key, column in zip(keys, columns, strict=True)
        ),
        has_sql_defaults=any(_sql_default(c) for c in columns),
        class_manager=mapper.class_manager,
        state_class=state_factory(mapper),
        tenant_column=tenant_column,
        identity_class=identity_class(mapper),
        conversions=tuple((i, p) for i, p in enumerate(from_db) if p is not None),
        primary_key_keys=tuple(load_keys[i] for i in positions),
        primary_key_of=_tuple_getter(positions),
    )


def _tuple_getter(positions: tuple[int, ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    # itemgetter returns a bare value for one position; an identity key is a tuple.
    if len(positions) == 1:
        (only,) = positions
        return lambda values: (values[only],)
    getter: Callable[[Sequence[Any]], tuple[Any, ...]] = itemgetter(*positions)
    return getter


def _python_default(column: Column[Any]) -> Callable[[], Any] | None:
    default: Any = column.default
    if default is None:
        return None
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        wrapped = default.arg
        return lambda: wrapped(None)  # SQLAlchemy wraps it to take a context
    return None


def _sql_default(column: Column[Any]) -> bool:
    # A default the database evaluates as part of the INSERT (func.now(), a sequence).
    default: Any = column.default
    return default is not None and not (default.is_scalar or default.is_callable)


def _tenant_column(model: type[Any], table: Table) -> Column[Any] | None:
    # The one definition of a tenant table (tenancy.schema.declarative): a
    # tenant-owned model's rows carry org_id, the tenants' own table is keyed by it.
    if is_tenant_owned(model):
        return table.columns["org_id"]
    if is_tenant_root(model):
        return table.columns["id"]
    return None


def _bind_processor(column: Column[Any], dialect: Dialect) -> Processor:
    processor: Processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


#: The driver type code SQLAlchemy's asyncpg Numeric asks for (NUMERIC's OID).
_NUMERIC_OID = 1700


def _result_processor(column: Column[Any], dialect: Dialect) -> Processor:
    coltype = _NUMERIC_OID if isinstance(column.type, Numeric) else None
    processor: Processor = column.type.dialect_impl(dialect).result_processor(dialect, coltype)
    return processor
