"""Repository interfaces: services depend on these, not on SQLAlchemy.

``Repository`` is what every aggregate's store offers; ``UnitOfWork`` is the
transaction boundary handing them out. Fakes for service tests implement these
protocols in memory.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar, overload

from tenancy.events.domain_event import DomainEvent
from tenancy.pagination import KeysetPage, KeysetResult, OffsetPage, PageResult
from tenancy.specification import Specification

ModelT = TypeVar("ModelT")
IdT = TypeVar("IdT", contravariant=True)


class Repository(Protocol[ModelT, IdT]):
    """Storage of one aggregate type; every method runs in the caller's transaction."""

    async def add(self, obj: ModelT) -> ModelT:
        """Insert ``obj``."""

    async def add_many(self, objs: Sequence[ModelT]) -> builtins.list[ModelT]:
        """Insert several aggregates."""

    async def get(self, id_: IdT) -> ModelT:
        """Return one aggregate; raise ``NotFound`` if it is not visible."""

    async def get_or_none(self, id_: IdT) -> ModelT | None:
        """Return one aggregate, or ``None``."""

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

    async def count(self, spec: Specification[ModelT] | None = None) -> int:
        """Return how many aggregates match ``spec``."""

    async def exists(self, spec: Specification[ModelT]) -> bool:
        """Return whether any aggregate matches ``spec``."""

    async def update(
        self, id_: IdT, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> ModelT:
        """Change one aggregate."""

    async def update_where(self, spec: Specification[ModelT], changes: Mapping[str, Any]) -> int:
        """Change every matching aggregate; return the count."""

    async def delete(self, id_: IdT) -> None:
        """Delete one aggregate."""

    async def delete_where(self, spec: Specification[ModelT]) -> int:
        """Delete every matching aggregate; return the count."""

    async def upsert(self, values: Mapping[str, Any], *, update: Sequence[str] = ()) -> ModelT:
        """Insert, or update on a natural-key conflict."""


class UnitOfWork(Protocol):
    """A transaction boundary: changes persist only through ``commit``."""

    async def commit(self) -> None:
        """Write changes and events, and commit."""

    async def rollback(self) -> None:
        """Discard everything since the last commit."""

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """Return a nested transaction; an error inside rolls back only it."""

    def collect(self, event: DomainEvent) -> None:
        """Queue an event to be written at commit."""


__all__ = ["Repository", "UnitOfWork"]
