"""Precompiled SQL and row materialisation for the repositories' hot paths.

The hot operations (``get`` by id, ``add``, and ``list`` with
``list_statement``) run straight on the driver
connection of the unit of work's transaction, with SQL compiled once per model.
Values pass through SQLAlchemy's own bind and result processors for each column
type, so a row read here equals one the ORM would load. Materialised instances
are handed to the session as persistent (no SQL), so changing them and flushing
works exactly as for ORM-loaded instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Numeric, Table, inspect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.orm import Mapper, class_mapper, make_transient_to_detached

from tenancy.internals import commit_loaded, identity_class, set_identity_key, state_factory

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class RowMapper:
    """SQL text and value conversion for one mapped model."""

    model: type[Any]
    #: The columns a read loads: all but deferred ones (which may be unreadable).
    load_columns: tuple[Column[Any], ...]
    load_keys: tuple[str, ...]
    select_by_id: str
    insert: str
    #: Per column of ``insert``: attribute key, Python-side default, bind processor.
    insert_plan: tuple[tuple[str, Callable[[], Any] | None, Processor], ...]
    class_manager: Any
    state_class: Callable[[Any, Any], Any]
    tenant_column: Column[Any] | None
    identity_class: type[Any]
    #: (position, processor) of the loaded columns that need a conversion.
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]
    primary_key_keys: tuple[str, ...]
    #: The identity-key tuple of a row's (converted) values.
    primary_key_of: Callable[[Sequence[Any]], tuple[Any, ...]]

    def insert_values(self, obj: Any) -> list[Any]:
        """Fill Python-side defaults on ``obj`` and return its column values for ``insert``."""
        loaded = obj.__dict__
        values = []
        for key, default, process in self.insert_plan:
            value = loaded.get(key)
            if value is None and default is not None:
                value = default()
            # Every column gets a value, None included: the instance is then fully
            # loaded once it becomes persistent, and never lazy-loads (no I/O here).
            loaded[key] = value
            values.append(process(value) if process is not None and value is not None else value)
        return values

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


def row_mapper(model: type[Any]) -> RowMapper:
    """Return the (cached) row mapper of ``model``."""
    found = _MAPPERS.get(model)
    if found is None:
        found = _MAPPERS[model] = _build(model)
    return found


_MAPPERS: dict[type[Any], RowMapper] = {}


def _build(model: type[Any]) -> RowMapper:
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
    names = ", ".join(_quote(c.name) for c in columns)
    load_names = ", ".join(_quote(c.name) for c in load_columns)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    table_name = _quote(table.name)
    tenant_column = _tenant_column(table)
    select_by_id = f"SELECT {load_names} FROM {table_name} WHERE id = $1"
    if tenant_column is not None:
        select_by_id += f" AND {_quote(tenant_column.name)} = $2"
    from_db = tuple(_result_processor(c) for c in load_columns)
    # In the mapper's primary-key order, which is the identity key's order.
    positions = tuple(load_columns.index(c) for c in mapper.primary_key)
    return RowMapper(
        model=model,
        load_columns=load_columns,
        load_keys=load_keys,
        select_by_id=select_by_id,
        insert=f"INSERT INTO {table_name} ({names}) VALUES ({placeholders})",
        insert_plan=tuple(
            (key, _python_default(column), _bind_processor(column))
            for key, column in zip(keys, columns, strict=True)
        ),
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


def _tenant_column(table: Table) -> Column[Any] | None:
    # The column holding the tenant id: org_id, or the organization's own id.
    if "org_id" in table.columns:
        return table.columns["org_id"]
    if table.name == "organizations":
        return table.columns["id"]
    return None


def _quote(identifier: str) -> str:
    return str(_DIALECT.identifier_preparer.quote(identifier))


def _bind_processor(column: Column[Any]) -> Processor:
    processor: Processor = column.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
    return processor


#: The driver type code SQLAlchemy's asyncpg Numeric asks for (NUMERIC's OID).
_NUMERIC_OID = 1700


def _result_processor(column: Column[Any]) -> Processor:
    coltype = _NUMERIC_OID if isinstance(column.type, Numeric) else None
    processor: Processor = column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, coltype)
    return processor
