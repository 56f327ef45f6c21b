"""Unit-of-work attributes whose repository is created on first use.

A unit of work offers a repository per aggregate, but most transactions touch
one or two. Creating only those saves work on every unit of work, and keeping
the created ones in one list lets the unit of work drop them when it ends:
repositories refer back to their unit of work, and a reference cycle left
behind would wait for the cyclic garbage collector, whose passes grow costly
under load, instead of being freed by reference counting at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from tenancy.events.collection import EventSource
from tenancy.observability.observer import observe_repository_calls

if TYPE_CHECKING:
    from tenancy.db.unit_of_work import UnitOfWork

RepositoryT = TypeVar("RepositoryT", bound=EventSource)


class RepositoryAttribute(Generic[RepositoryT]):
    """``customers = RepositoryAttribute(CustomerRepository)`` on a ``UnitOfWork`` subclass.

    The repository is built from the unit of work on first access and then kept
    in the instance's ``__dict__`` (this is a non-data descriptor), so later
    accesses are plain attribute reads.
    """

    def __init__(self, factory: Callable[[Any], RepositoryT]) -> None:
        self._factory = factory
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, uow: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, uow: UnitOfWork, owner: type[Any]) -> RepositoryT: ...

    def __get__(self, uow: UnitOfWork | None, owner: type[Any]) -> Self | RepositoryT:
        if uow is None:
            return self
        repository = self._factory(uow)
        observation = uow._observation
        if observation is not None:
            observe_repository_calls(repository, self._name, observation)
        uow.__dict__[self._name] = repository
        uow._collector.add_repository(self._name, repository)
        return repository


__all__ = ["RepositoryAttribute"]
