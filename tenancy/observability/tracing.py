"""OpenTelemetry spans of units of work (the ``otel`` extra: opentelemetry-api).

One span ``tenancy.unit_of_work`` per ``async with`` block: the tenant, the
isolation level, the outcome (``commit``, ``rollback`` or ``error``), the error
class and SQLSTATE, the commits and the domain events written. Statements are
not spanned here: the SQLAlchemy and asyncpg instrumentations do that, as
children of this span, so nothing is counted twice. No values, no messages.
"""

from __future__ import annotations

import uuid
from contextvars import Token

from tenancy.extras import missing_extra

try:
    from opentelemetry import context as context_api
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("otel", exc) from exc

from tenancy.observability.errors import sqlstate_of
from tenancy.observability.observer import Observation

SPAN_NAME = "tenancy.unit_of_work"


class _SpanObservation:
    """The span of one unit of work."""

    def __init__(self, span: Span, token: Token[Context]) -> None:
        self._span = span
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
        return _SpanObservation(span, token)
