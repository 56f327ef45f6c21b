"""Fixtures of the observability suite: a database of each test's own (the outbox gauges
count every row), the session's broker, and the event suite's helpers."""

from tests.cli.conftest import migrated_template, scratch_db, scratch_settings, scratch_url
from tests.events.conftest import (
    admin_engine,
    broker,
    changes,
    kafka_settings,
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
    "receive",
    "relay_settings",
    "scratch_db",
    "scratch_settings",
    "scratch_url",
    "until",
]
