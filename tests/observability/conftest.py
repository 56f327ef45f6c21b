"""Fixtures of the observability suite: a database of each test's own (the outbox gauges
count every row), the session's broker, and the event suite's helpers."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from repositories import PlatformDatabase
from tenancy.observability.tracing import TracingObserver
from tests.cli.conftest import migrated_template, scratch_db, scratch_settings, scratch_url
from tests.events.conftest import (
    admin_engine,
    broker,
    changes,
    kafka_settings,
    own_broker,
    receive,
    relay_settings,
    until,
)

__all__ = [
    "admin_engine",
    "broker",
    "changes",
    "kafka_settings",
    "migrated_template",
    "own_broker",
    "receive",
    "relay_settings",
    "scratch_db",
    "scratch_settings",
    "scratch_url",
    "until",
]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Spans finished during the test, in memory."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider of this test's own (the global one is left alone)."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


@pytest.fixture
def traced(db: PlatformDatabase, provider: TracerProvider) -> PlatformDatabase:
    """The session's database, with a span per unit of work."""
    return PlatformDatabase(
        db.engine, db.settings, observer=TracingObserver(provider.get_tracer("tests"))
    )
