"""The observer of units of work: told when one starts, gets a connection, commits, ends.

The unit of work calls these hooks and nothing else; tracing (OpenTelemetry) and
metrics (Prometheus) are observers, and so may be a service's own. Hooks must not
raise and must not await: they run inside the unit of work's own error handling,
on paths that cancellation may also take.
"""

from __future__ import annotations

import functools
import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class Observation(Protocol):
    """What one observer records of one unit of work (``async with`` block)."""

    def connection_acquired(self, waited: float) -> None:
        """A pooled connection was checked out after ``waited`` seconds."""

    def committed(self, events: int) -> None:
        """A transaction committed, with ``events`` domain events written to the outbox."""

    def failed(self, error: BaseException) -> None:
        """An operation raised ``error`` (already translated to a ``TenancyError``)."""

    def finished(self, error: BaseException | None) -> None:
        """The block ended (``error`` is what left it, if anything)."""

    def trace_context(self) -> str | None:
        """Return the W3C ``traceparent`` its events should carry, if it traces."""

    def repository_call(
        self, repository: str, method: str
    ) -> AbstractContextManager[object] | None:
        """Return a context around one repository call (a child span), or ``None``."""

    @property
    def observes_repository_calls(self) -> bool:
        """Whether ``repository_call`` ever returns a context (else calls are not wrapped)."""


class UnitOfWorkObserver(Protocol):
    """Starts one ``Observation`` per unit of work."""

    def started(self, org_id: uuid.UUID, isolation_level: str | None) -> Observation:
        """A unit of work for ``org_id`` is being entered."""


class _Observations:
    """Several observations, told the same things."""

    def __init__(self, observations: Sequence[Observation]) -> None:
        self._all = observations

    def connection_acquired(self, waited: float) -> None:
        for observation in self._all:
            observation.connection_acquired(waited)

    def committed(self, events: int) -> None:
        for observation in self._all:
            observation.committed(events)

    def failed(self, error: BaseException) -> None:
        for observation in self._all:
            observation.failed(error)

    def finished(self, error: BaseException | None) -> None:
        for observation in self._all:
            observation.finished(error)

    def trace_context(self) -> str | None:
        return next((t for o in self._all if (t := o.trace_context()) is not None), None)

    @property
    def observes_repository_calls(self) -> bool:
        return any(o.observes_repository_calls for o in self._all)

    def repository_call(
        self, repository: str, method: str
    ) -> AbstractContextManager[object] | None:
        found = [c for o in self._all if (c := o.repository_call(repository, method)) is not None]
        return found[0] if len(found) == 1 else (_all_of(found) if found else None)


class Observers:
    """Several observers as one (tracing and metrics together)."""

    def __init__(self, observers: Sequence[UnitOfWorkObserver]) -> None:
        self.observers = tuple(observers)

    def started(self, org_id: uuid.UUID, isolation_level: str | None) -> Observation:
        """Start one observation per observer."""
        return _Observations([o.started(org_id, isolation_level) for o in self.observers])


#: A W3C ``traceparent`` (version 00): the only form written into SQL or a header.
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def valid_traceparent(value: str | None) -> str | None:
    """Return ``value`` if it is a well-formed ``traceparent`` (not all-zero ids), else ``None``."""
    if value is None or TRACEPARENT.match(value) is None:
        return None
    _, trace_id, span_id, _ = value.split("-")
    if set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return value


@contextmanager
def _all_of(contexts: Sequence[AbstractContextManager[object]]) -> Iterator[None]:
    with ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield


def observe_repository_calls(repository: Any, name: str, observation: Observation) -> None:
    """Run each public coroutine method of ``repository`` inside ``observation``'s context.

    Only when the observation asks for it (tracing): the instance moves to a
    subclass of its class, built once per class, whose coroutine methods open
    the context; ``isinstance`` holds, other units of work are untouched, and
    nothing changes when nothing observes calls.
    """
    if not observation.observes_repository_calls:
        return
    repository.__dict__[_OBSERVATION] = (observation, name)
    repository.__class__ = _observed_class(type(repository))


#: Where an observed repository keeps its observation and attribute name.
_OBSERVATION = "_tenancy_observation"
_OBSERVED_CLASSES: dict[type, type] = {}


def _observed_class(cls: type) -> type:
    found = _OBSERVED_CLASSES.get(cls)
    if found is None:
        methods = {
            name: _observed(getattr(cls, name), name)
            for name in dir(cls)
            if not name.startswith("_") and inspect.iscoroutinefunction(getattr(cls, name, None))
        }
        found = type(cls.__name__, (cls,), {**methods, "__module__": cls.__module__})
        _OBSERVED_CLASSES[cls] = found
    return found


def _observed(
    function: Callable[..., Awaitable[Any]], method: str
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(function)
    async def observed(self: Any, *args: Any, **kwargs: Any) -> Any:
        # One span per call the caller made: a repository's calls to its own
        # methods (get -> get_or_none) are part of it.
        observed_by = self.__dict__.get(_OBSERVATION)
        if observed_by is None or _IN_REPOSITORY_CALL.get():
            return await function(self, *args, **kwargs)
        observation, name = observed_by
        context = observation.repository_call(name, method)
        if context is None:
            return await function(self, *args, **kwargs)
        token = _IN_REPOSITORY_CALL.set(True)
        try:
            with context:
                return await function(self, *args, **kwargs)
        finally:
            _IN_REPOSITORY_CALL.reset(token)

    return observed


_IN_REPOSITORY_CALL: ContextVar[bool] = ContextVar("tenancy_in_repository_call", default=False)
