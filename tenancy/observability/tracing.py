"""OpenTelemetry spans of units of work (the ``otel`` extra: opentelemetry-api).

One span ``tenancy.unit_of_work`` per ``async with`` block: the tenant, the
isolation level, the outcome (``commit``, ``rollback`` or ``error``), the error
class and SQLSTATE, the commits and the domain events written. Statements are
not spanned here: the SQLAlchemy and asyncpg instrumentations do that, as
children of this span, so nothing is counted twice. No values, no messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import Token
from typing import Protocol

from tenancy.extras import missing_extra

try:
    from opentelemetry import context as context_api
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import (
        Link,
        NonRecordingSpan,
        Span,
        SpanContext,
        Status,
        StatusCode,
        TraceFlags,
        Tracer,
    )
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("otel", exc) from exc

from tenancy.observability.errors import sqlstate_of
from tenancy.observability.observer import Observation, valid_traceparent

SPAN_NAME = "tenancy.unit_of_work"


class _SpanObservation:
    """The span of one unit of work."""

    def __init__(self, span: Span, token: Token[Context], tracer: Tracer) -> None:
        self._span = span
        self._tracer = tracer
        self._token = token
        self._commits = 0
        self._events = 0
        self._failed = False

    def connection_acquired(self, waited: float) -> None:
        self._span.set_attribute("tenancy.pool.wait_seconds", waited)

    def committed(self, events: int) -> None:
        self._commits += 1
        self._events += events

    def failed(self, error: BaseException) -> None:
        self._failed = True
        self._describe(error)

    def finished(self, error: BaseException | None) -> None:
        span = self._span
        if error is not None:
            self._describe(error)
        outcome = (
            "error"
            if error is not None or self._failed
            else ("commit" if self._commits else "rollback")
        )
        span.set_attribute("tenancy.outcome", outcome)
        span.set_attribute("tenancy.commits", self._commits)
        span.set_attribute("tenancy.events_written", self._events)
        if outcome == "error":
            span.set_status(Status(StatusCode.ERROR))
        context_api.detach(self._token)
        span.end()

    def trace_context(self) -> str | None:
        return traceparent_of(self._span)

    observes_repository_calls = True

    def repository_call(self, repository: str, method: str) -> AbstractContextManager[Span]:
        # A child of whatever is current (the unit of work's span, or the caller's).
        return self._tracer.start_as_current_span(
            f"tenancy.repository {repository}.{method}",
            attributes={"tenancy.repository": repository, "tenancy.method": method},
        )

    def _describe(self, error: BaseException) -> None:
        self._span.set_attribute("error.type", type(error).__name__)
        code = sqlstate_of(error)
        if code is not None:
            self._span.set_attribute("db.response.status_code", code)


class TracingObserver:
    """Starts a ``tenancy.unit_of_work`` span per unit of work, current for its block."""

    def __init__(self, tracer: Tracer | None = None) -> None:
        self._tracer = tracer if tracer is not None else trace.get_tracer("tenancy")

    def started(self, org_id: uuid.UUID, isolation_level: str | None) -> Observation:
        """Start the span and make it current, so statement spans become its children."""
        span = self._tracer.start_span(
            SPAN_NAME,
            kind=trace.SpanKind.INTERNAL,
            attributes={
                "tenant.id": str(org_id),
                "db.system": "postgresql",
                "tenancy.isolation_level": isolation_level or "default",
            },
        )
        token = context_api.attach(trace.set_span_in_context(span))
        return _SpanObservation(span, token, self._tracer)


def traceparent_of(span: Span) -> str | None:
    """Return the W3C ``traceparent`` of ``span``, or ``None`` if it is not recording."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def context_from_traceparent(traceparent: str | bytes | None) -> Context:
    """Return an OpenTelemetry context whose parent is the remote span ``traceparent``.

    A consumer starts its span in it to continue the producer's trace (the relay
    sends the producing unit of work's ``traceparent`` as a Kafka header).
    Anything malformed gives an empty context: a new trace, never an error.
    """
    text = traceparent.decode("ascii", "replace") if isinstance(traceparent, bytes) else traceparent
    remote = remote_span_context(text)
    if remote is None:
        return Context()
    return trace.set_span_in_context(NonRecordingSpan(remote))


def remote_span_context(traceparent: str | None) -> SpanContext | None:
    """Return the remote span a well-formed ``traceparent`` names, else ``None``."""
    valid = valid_traceparent(traceparent)
    if valid is None:
        return None
    _, trace_id, span_id, flags = valid.split("-")
    return SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16)),
    )


class TracedEvent(Protocol):
    """What the relay's batch span needs of a claimed event."""

    @property
    def trace_context(self) -> str | None:
        """The producing transaction's ``traceparent``, if any."""


#: At most this many links per batch span (one per producing transaction).
_MAX_LINKS = 128


class BatchSpan:
    """The span of one relay batch; ``outcome`` records what became of it."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def outcome(self, published: int, failed: int) -> None:
        """Record how many events were acknowledged and how many failed."""
        self.span.set_attribute("tenancy.relay.published", published)
        self.span.set_attribute("tenancy.relay.failed", failed)
        if failed and not published:
            self.span.set_status(Status(StatusCode.ERROR))


@contextmanager
def relay_batch_span(tracer: Tracer, batch: Sequence[TracedEvent]) -> Iterator[BatchSpan]:
    """Span one relay batch, linked to the traces of the transactions that wrote it."""
    contexts: dict[str, SpanContext] = {}
    for event in batch:
        if event.trace_context in contexts or len(contexts) >= _MAX_LINKS:
            continue
        remote = remote_span_context(event.trace_context)
        if remote is not None and event.trace_context is not None:
            contexts[event.trace_context] = remote
    with tracer.start_as_current_span(
        "tenancy.relay.batch",
        kind=trace.SpanKind.PRODUCER,
        links=[Link(context) for context in contexts.values()],
        attributes={"tenancy.relay.batch_size": len(batch), "messaging.system": "kafka"},
    ) as span:
        yield BatchSpan(span)


def relay_tracer() -> Tracer:
    """Return the tracer of the relay (the global provider's)."""
    return trace.get_tracer("tenancy.relay")
