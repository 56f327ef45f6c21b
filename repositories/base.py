"""The generic async repository: storage of one aggregate over an ``AsyncSession``.

Repositories never mention tenants: the session's transaction carries
``SET LOCAL app.org_id`` and the database policies do the filtering. They flush
but never commit; the unit of work owns the transaction. Public methods keep
the bookkeeping (``seen``, lifecycle events); storage lives in the statements.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, overload

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from repositories.lifecycle import (
    AggregateCreated,
    AggregateDeleted,
    AggregateUpdated,
    column_names,
    lifecycle_event,
    loaded_columns,
)
from repositories.list_statement import ListShape, list_select, list_sql
from repositories.row_mapper import RowMapper, row_mapper
from repositories.session_source import SessionSource
from repositories.source import IdT, ModelT, TransactionSource
from repositories.typed_rows import RowT, row_builder
from tenancy.context import session_tenant
from tenancy.db.connection import TenantConnection
from tenancy.errors import Conflict, InvalidData, NotFound, translated
from tenancy.events.domain_event import DomainEvent
from tenancy.pagination import (
    KeysetPage,
    KeysetResult,
    OffsetPage,
    PageResult,
    SortKey,
    encode_cursor,
    keyset_values,
    resolve_sort,
)
from tenancy.specification import Specification

#: Resolved sort keys per repository class and ``order_by``.
_SORT_KEYS: dict[tuple[type[Any], tuple[str, ...]], tuple[SortKey, ...]] = {}

#: Columns callers may never set through ``update``: identity and tenancy.
PROTECTED_COLUMNS = frozenset({"org_id", "id", "created_at", "version"})


class AsyncRepository(Generic[ModelT, IdT]):
    """CRUD, specifications and pagination for one aggregate type.

    Subclasses set ``model``, and may widen ``sort_keys`` (the whitelist of
    sortable columns) and ``natural_key`` (columns ``upsert`` conflicts on).
    """

    model: ClassVar[type[Any]]
    sort_keys: ClassVar[Mapping[str, str]] = {"created_at": "created_at", "id": "id"}
    default_order: ClassVar[tuple[str, ...]] = ("created_at",)
    natural_key: ClassVar[tuple[str, ...]] = ()
    #: Columns of a deleted row that ``_after_delete`` needs besides its id.
    delete_returns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, source: AsyncSession | TransactionSource) -> None:
        # Inside a unit of work the source is the unit of work itself: its session
        # is created on first use, and the hot paths use its driver connection.
        self._source: TransactionSource = (
            SessionSource(source) if isinstance(source, AsyncSession) else source
        )
        # A source that collects events holds the aggregates itself (weakly while
        # they have none); over a plain session the repository keeps them in seen.
        self._collector = self._source.event_collector
        self.seen: dict[int, ModelT] = {}
        # Bulk statements change rows never loaded as objects; their events wait here.
        self.loose_events: builtins.list[DomainEvent] = []
        self._row_mapper: RowMapper | None = None

    @property
    def session(self) -> AsyncSession:
        """The ORM session of the current transaction."""
        return self._source.session

    async def _connection(self) -> AsyncConnection:
        return await self._source.core_connection()

    async def _driver(self) -> TenantConnection:
        return await self._source.driver()

    def _tenant(self) -> uuid.UUID:
        return self._source.org_id

    def _adopt_inserted(self, obj: Any) -> Any:
        return self._source.adopt_inserted(obj)

    def _adopt_all(self, objs: builtins.list[Any]) -> builtins.list[Any]:
        return self._source.adopt_all(objs)

    def _mapper(self) -> RowMapper:
        # Compiled with the engine's own dialect, so its options (json_serializer) apply.
        mapper = self._row_mapper
        if mapper is None:
            mapper = self._row_mapper = row_mapper(self.model, self._source.dialect)
        return mapper

    def _created_event(self, obj: ModelT) -> DomainEvent | None:
        """Return the event ``add`` raises for ``obj`` (override for a richer one, or None)."""
        return self._event(AggregateCreated, obj.id, data=loaded_columns(obj))

    # -- bookkeeping -------------------------------------------------------

    def _release(self) -> None:
        """Forget every aggregate handed out and every pending event (the unit of work ended).

        Repositories and their unit of work refer to each other; dropping the
        aggregates here lets reference counting free them at once instead of
        leaving them to the cyclic garbage collector, which is costly under load.
        """
        self.seen.clear()
        self.loose_events.clear()

    def _see(self, obj: ModelT) -> ModelT:
        # On a plain session the repository holds what it hands out, for the events
        # write_outbox collects; a unit of work holds aggregates itself (weakly
        # while they have no events), so that unused ones are freed at once.
        if self._collector is None:
            self.seen[id(obj)] = obj
        return obj

    def _see_all(self, objs: Iterable[ModelT]) -> builtins.list[ModelT]:
        listed: builtins.list[ModelT] = builtins.list(objs)
        if self._collector is None:
            self.seen.update((id(obj), obj) for obj in listed)
        return listed

    def _event(self, base: type[DomainEvent], obj_id: object, **fields: Any) -> DomainEvent:
        model = self.model
        event_class = lifecycle_event(base, model.__name__, model.__tablename__)
        return event_class(aggregate_id=str(obj_id), **fields)

    async def _flush(self) -> None:
        with translated():
            await self.session.flush()

    async def _execute(self, statement: Any, params: Any = None) -> Any:
        with translated():
            return await self.session.execute(statement, params)

    # -- reads -------------------------------------------------------------

    async def get(self, id_: IdT) -> ModelT:
        """Return the aggregate with ``id_`` in the current tenant.

        Raises:
            NotFound: no such row is visible (another tenant's id is not visible).
        """
        obj = await self.get_or_none(id_)
        if obj is None:
            raise NotFound(f"{self.model.__name__} {id_} not found")
        return obj

    async def get_or_none(self, id_: IdT) -> ModelT | None:
        """Return the aggregate with ``id_``, or ``None``."""
        mapper = self._mapper()
        if mapper.orm_loads():
            # The model has load listeners: the ORM's loader fires them.
            statement = select(self.model).where(self.model.id == id_)
            if mapper.tenant_column is not None:
                statement = statement.where(mapper.tenant_column == self._tenant())
            found: ModelT | None = (await self._execute(statement)).scalars().first()
            return self._see(found) if found is not None else None
        driver = await self._driver()
        args: builtins.list[Any] = [id_]
        if mapper.tenant_column is not None:
            args.append(self._tenant())
        with translated():
            record = await driver.fetchrow(mapper.select_by_id, *args)
        if record is None:
            return None
        obj: ModelT = self._adopt_all(mapper.materialize_all([record], processed=False))[0]
        return self._see(obj)

    @overload
    async def list(
        self,
        spec: Specification[ModelT] | None = ...,
        *,
        order_by: Sequence[str] = ...,
        page: None = ...,
    ) -> builtins.list[ModelT]: ...

    @overload
    async def list(
        self,
        spec: Specification[ModelT] | None = ...,
        *,
        order_by: Sequence[str] = ...,
        page: OffsetPage,
    ) -> PageResult[ModelT]: ...

    @overload
    async def list(
        self,
        spec: Specification[ModelT] | None = ...,
        *,
        order_by: Sequence[str] = ...,
        page: KeysetPage,
    ) -> KeysetResult[ModelT]: ...

    async def list(
        self,
        spec: Specification[ModelT] | None = None,
        *,
        order_by: Sequence[str] = (),
        page: OffsetPage | KeysetPage | None = None,
    ) -> builtins.list[ModelT] | PageResult[ModelT] | KeysetResult[ModelT]:
        """Return the aggregates matching ``spec``, ordered, optionally paginated.

        ``order_by`` names whitelisted sort keys (``"-amount"`` for descending);
        ``id`` is always appended so the order is total.

        Raises:
            InvalidData: unknown sort key, or a malformed cursor.
        """
        keys = self._sort(order_by or self.default_order)
        if isinstance(page, KeysetPage):
            after = keyset_values(keys, page.after) if page.after is not None else []
            # One row more than the page tells whether another page follows; it is
            # counted, not materialised.
            rows, fetched = await self._rows(
                spec, keys, after=after, limit=page.limit + 1, keep=page.limit
            )
            more = fetched > page.limit
            cursor = encode_cursor([getattr(rows[-1], k.name) for k in keys]) if more else None
            return KeysetResult(items=rows, next_cursor=cursor)
        if isinstance(page, OffsetPage):
            total = await self.count(spec)
            rows, _ = await self._rows(spec, keys, limit=page.limit, offset=page.offset)
            return PageResult(items=rows, total=total)
        rows, _ = await self._rows(spec, keys)
        return rows

    @overload
    async def read(
        self,
        row_type: type[RowT],
        spec: Specification[ModelT] | None = ...,
        *,
        order_by: Sequence[str] = ...,
        page: None = ...,
    ) -> builtins.list[RowT]: ...

    @overload
    async def read(
        self,
        row_type: type[RowT],
        spec: Specification[ModelT] | None = ...,
        *,
        order_by: Sequence[str] = ...,
        page: KeysetPage,
    ) -> KeysetResult[RowT]: ...

    async def read(
        self,
        row_type: type[RowT],
        spec: Specification[ModelT] | None = None,
        *,
        order_by: Sequence[str] = (),
        page: KeysetPage | None = None,
    ) -> builtins.list[RowT] | KeysetResult[RowT]:
        """Return the rows matching ``spec`` as immutable ``row_type`` values, not aggregates.

        The same filter, order, keyset pages and tenant transaction as ``list``;
        no ORM instance is built, so nothing is tracked, loaded lazily or
        flushed. ``row_type`` is a (frozen) dataclass or a pydantic model whose
        fields name the model's attributes (see ``repositories.typed_rows``).

        Raises:
            InvalidData: unknown sort key, or a malformed cursor.
            ConfigurationError: ``row_type`` names an attribute the model does not load.
        """
        mapper = self._mapper()
        builder = row_builder(row_type, mapper.load_keys)
        keys = self._sort(order_by or self.default_order)
        after = keyset_values(keys, page.after) if page is not None and page.after else []
        limit = page.limit + 1 if page is not None else None
        rows, processed = await self._fetch(mapper, spec, keys, after=after, limit=limit)
        conversions = () if processed else mapper.conversions
        if page is None:
            return builder.build_all(rows, conversions)
        kept = rows[: page.limit]
        cursor = None
        if len(rows) > page.limit:
            last = mapper.values_of(kept[-1], processed=processed)
            cursor = encode_cursor([last[mapper.load_keys.index(k.column.key)] for k in keys])
        return KeysetResult(items=builder.build_all(kept, conversions), next_cursor=cursor)

    async def count(self, spec: Specification[ModelT] | None = None) -> int:
        """Return how many aggregates match ``spec`` (the filter only)."""
        statement = self._filtered(select(func.count()).select_from(self.model), spec)
        return int((await self._execute(statement)).scalar_one())

    async def exists(self, spec: Specification[ModelT]) -> bool:
        """Return whether any aggregate matches ``spec``."""
        statement = select(self._filtered(select(self.model.id), spec).exists())
        return bool((await self._execute(statement)).scalar_one())

    # -- writes ------------------------------------------------------------

    async def add(self, obj: ModelT) -> ModelT:
        """Insert ``obj`` (flushed, not committed) and raise its created event.

        Raises:
            Conflict: a unique constraint is violated.
            ForeignKeyViolation: it references a row the tenant does not have.
        """
        mapper = self._mapper()
        if mapper.orm_inserts():
            # Listeners or SQL-expression defaults: the ORM's flush keeps them.
            return (await self.add_many([obj]))[0]
        if mapper.tenant_column is not None and obj.__dict__.get("org_id") is None:
            obj.__dict__["org_id"] = self._tenant()
        insert, values = mapper.insert_values(obj)
        collector = self._collector
        event = None if insert.returned else self._created_event(obj)
        if collector is not None and event is not None:
            # Inside a unit of work the created event goes to the outbox with the row.
            await collector.insert_with_event(insert.sql, values, event)
        else:
            row = await self._insert_row(insert.sql, values)
            # With RETURNING the event's payload holds what the server filled.
            mapper.fill_returned(obj, insert, row)
            event = self._created_event(obj) if insert.returned else event
            if event is not None:
                obj.record_event(event)
        mapper.mark_inserted(obj)
        obj = self._adopt_inserted(obj)
        return self._see(obj)

    async def _insert_row(self, sql: str, values: Sequence[Any]) -> Any:
        # Returns the row RETURNING yields, or None for an INSERT without it.
        driver = await self._driver()
        with translated():
            if " RETURNING " in sql:
                return await driver.fetchrow(sql, *values)
            await driver.execute(sql, *values)
        return None

    async def add_many(self, objs: Sequence[ModelT]) -> builtins.list[ModelT]:
        """Insert several aggregates in one flush."""
        self.session.add_all(objs)
        await self._flush()
        for obj in objs:
            event = self._created_event(obj)
            if event is not None:
                obj.record_event(event)
        return self._see_all(objs)

    async def update(
        self, id_: IdT, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> ModelT:
        """Apply ``changes`` to one aggregate.

        With ``expected_version`` (models with a ``version`` column), the update
        succeeds only if nobody changed the row since the caller read it.

        Raises:
            NotFound: no such row in this tenant.
            Conflict: the version does not match (a stale update).
            InvalidData: a change names an unknown or protected column.
        """
        self._check_changes(changes)
        obj = await self.get(id_)
        if expected_version is not None and getattr(obj, "version", None) != expected_version:
            raise Conflict(f"{self.model.__name__} {id_} was changed (stale version)")
        for name, value in changes.items():
            setattr(obj, name, value)
        await self._flush()
        obj.record_event(self._event(AggregateUpdated, id_, changes=dict(changes)))
        return obj

    async def update_where(self, spec: Specification[ModelT], changes: Mapping[str, Any]) -> int:
        """Apply ``changes`` to every matching aggregate in one statement; return the count."""
        self._check_changes(changes)
        statement = (
            update(self.model)
            .where(spec.to_clause())
            .values(**changes)
            .returning(self.model.id)
            .execution_options(synchronize_session="fetch")
        )
        ids = list((await self._execute(statement)).scalars())
        payload = dict(changes)
        for row_id in ids:
            self.loose_events.append(self._event(AggregateUpdated, row_id, changes=payload))
        return len(ids)

    async def delete(self, id_: IdT) -> None:
        """Delete one aggregate.

        Raises:
            NotFound: no such row in this tenant.
        """
        obj = await self.get(id_)
        await self.session.delete(obj)
        await self._flush()
        await self._after_delete([obj])
        obj.record_event(self._event(AggregateDeleted, id_))

    async def delete_where(self, spec: Specification[ModelT]) -> int:
        """Delete every matching aggregate in one statement; return the count."""
        returned = [getattr(self.model, name) for name in self.delete_returns]
        statement = (
            delete(self.model)
            .where(spec.to_clause())
            .returning(self.model.id, *returned)
            .execution_options(synchronize_session="fetch")
        )
        rows = list((await self._execute(statement)).all())
        await self._after_delete(rows)
        for row in rows:
            self.loose_events.append(self._event(AggregateDeleted, row.id))
        return len(rows)

    async def _after_delete(self, deleted: Sequence[Any]) -> None:
        """Remove what must go with the deleted rows, in the same transaction (default: nothing).

        ``deleted`` holds the aggregates or rows, with ``id`` and ``delete_returns``.
        """

    async def upsert(self, values: Mapping[str, Any], *, update: Sequence[str] = ()) -> ModelT:
        """Insert, or on a natural-key conflict update the ``update`` columns; return the row.

        Raises:
            InvalidData: the repository declares no natural key.
        """
        if not self.natural_key:
            raise InvalidData(f"{self.model.__name__} has no natural key to upsert on")
        row = {"org_id": session_tenant(self.session.sync_session), **values}
        row.setdefault("id", uuid.uuid4())
        insert = pg_insert(self.model).values(**row)
        # With nothing to update, re-set a key column so RETURNING yields the row.
        set_ = {name: insert.excluded[name] for name in update} or {
            self.natural_key[-1]: insert.excluded[self.natural_key[-1]]
        }
        statement = insert.on_conflict_do_update(
            index_elements=["org_id", *self.natural_key], set_=set_
        ).returning(self.model)
        result = await self._execute(
            select(self.model).from_statement(statement).execution_options(populate_existing=True)
        )
        obj: ModelT = result.scalars().one()
        obj.record_event(self._event(AggregateUpdated, obj.id, changes=dict(values)))
        return self._see(obj)

    # -- helpers -----------------------------------------------------------

    def _sort(self, order_by: Sequence[str]) -> tuple[SortKey, ...]:
        cache_key = (type(self), tuple(order_by))
        keys = _SORT_KEYS.get(cache_key)
        if keys is None:
            whitelist = {name: getattr(self.model, attr) for name, attr in self.sort_keys.items()}
            resolved = resolve_sort(order_by, whitelist)  # InvalidData: not cached
            if "id" not in {k.name for k in resolved}:
                descending = resolved[-1].descending if resolved else False
                resolved.append(SortKey("id", self.model.id, descending))
            keys = _SORT_KEYS[cache_key] = tuple(resolved)
        return keys

    def _filtered(self, statement: Select[Any], spec: Specification[ModelT] | None) -> Select[Any]:
        return spec.apply(statement) if spec is not None else statement

    async def _rows(
        self,
        spec: Specification[ModelT] | None,
        keys: tuple[SortKey, ...],
        *,
        after: Sequence[Any] = (),
        limit: int | None = None,
        offset: int | None = None,
        keep: int | None = None,
    ) -> tuple[builtins.list[ModelT], int]:
        # Returns the aggregates of the first ``keep`` rows (all by default) and
        # how many rows the query returned.
        mapper = self._mapper()
        if mapper.orm_loads():
            # The model has load listeners: the ORM's loader fires them.
            clause = spec.to_clause() if spec is not None else None
            shape = ListShape(keys, bool(after), limit is not None, offset is not None)
            statement = list_select(
                mapper,
                clause,
                shape,
                tenant=self._tenant(),
                after=after,
                limit=limit,
                offset=offset,
                entities=True,
            )
            found = builtins.list((await self._execute(statement)).scalars())
            return self._see_all(found if keep is None else found[:keep]), len(found)
        rows, processed = await self._fetch(
            mapper, spec, keys, after=after, limit=limit, offset=offset
        )
        kept = rows if keep is None else rows[:keep]
        objs = self._see_all(self._adopt_all(mapper.materialize_all(kept, processed=processed)))
        return objs, len(rows)

    async def _fetch(
        self,
        mapper: RowMapper,
        spec: Specification[ModelT] | None,
        keys: tuple[SortKey, ...],
        *,
        after: Sequence[Any] = (),
        limit: int | None = None,
        offset: int | None = None,
    ) -> tuple[Sequence[Any], bool]:
        # The rows of a list call's loaded columns, and whether their values went
        # through the result processors already (Core) or not (the driver).
        shape = ListShape(keys, bool(after), limit is not None, offset is not None)
        tenant = self._tenant()
        # A prepared specification's expression is one object for every call (its
        # cache key computed once); its values come separately.
        planned = list_sql(
            mapper,
            spec.expression if spec is not None else None,
            shape,
            tenant=tenant,
            after=after,
            limit=limit,
            offset=offset,
            parameters=spec.parameters if spec is not None else {},
        )
        with translated():
            if planned is not None:
                # The common shapes run as cached SQL text straight on the driver.
                driver = await self._driver()
                return await driver.fetch(planned[0], *planned[1]), False
            clause = spec.to_clause() if spec is not None else None
            statement = list_select(
                mapper, clause, shape, tenant=tenant, after=after, limit=limit, offset=offset
            )
            connection = await self._connection()
            return (await connection.execute(statement)).all(), True

    def _check_changes(self, changes: Mapping[str, Any]) -> None:
        columns = column_names(self.model)
        bad = [name for name in changes if name not in columns or name in PROTECTED_COLUMNS]
        if bad:
            raise InvalidData(f"cannot change {bad} on {self.model.__name__}")


__all__ = ["PROTECTED_COLUMNS", "AsyncRepository", "IdT", "ModelT"]
