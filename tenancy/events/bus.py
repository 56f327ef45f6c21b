"""In-process subscribers: handlers per event type, run after a successful commit.

The unit of work calls ``EventBus.dispatch`` only once its transaction has
committed, so a handler never sees an event of rolled-back work. A handler that
raises cannot undo that commit: its error is logged at ERROR with the traceback,
the event id and the handler, handed to the optional ``on_error`` hook (metrics,
alerting), and the remaining handlers still run. Subscribers are best effort and
in-process; anything that must happen reliably reads the events from the broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tenancy.events.domain_event import DomainEvent
from tenancy.log import get_logger

logger = get_logger(__name__)

EventT = TypeVar("EventT", bound=DomainEvent)
Handler = Callable[[EventT], Awaitable[None]]
ErrorHook = Callable[[DomainEvent, Exception], None]


class EventBus:
    """Route committed events to the handlers subscribed to their type.

    A handler subscribed to a class also receives events of its subclasses, so
    ``subscribe(DomainEvent, ...)`` sees every event. One bus is built in the
    composition root and passed to the ``Database``; there is no global registry.
    """

    def __init__(self, *, on_error: ErrorHook | None = None) -> None:
        self._handlers: list[tuple[type[DomainEvent], Handler[Any]]] = []
        self._on_error = on_error

    def subscribe(self, event_type: type[EventT], handler: Handler[EventT]) -> None:
        """Run ``handler`` for every committed event that is an ``event_type``."""
        self._handlers.append((event_type, handler))

    def handlers_for(self, event: DomainEvent) -> list[Handler[Any]]:
        """Return the handlers ``event`` is delivered to, in subscription order."""
        return [handler for kind, handler in self._handlers if isinstance(event, kind)]

    async def dispatch(self, events: Sequence[DomainEvent]) -> None:
        """Deliver committed ``events`` in order; a failing handler is logged, not raised."""
        for event in events:
            for handler in self.handlers_for(event):
                try:
                    await handler(event)
                except Exception as exc:
                    # The transaction is already committed: raising here would make the
                    # caller believe it failed (and perhaps retry it). Log loudly instead.
                    logger.exception(
                        "subscriber %s failed for %s event %s",
                        _name(handler),
                        event.event_type(),
                        event.event_id,
                        extra={"event_id": str(event.event_id)},
                    )
                    self._report(event, exc)

    def _report(self, event: DomainEvent, exc: Exception) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(event, exc)
        except Exception:
            logger.exception("on_error hook failed for event %s", event.event_id)


def _name(handler: Handler[Any]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
