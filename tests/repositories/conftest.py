"""Fixtures of the repository suite (each engineer's fixtures under distinct names)."""

from __future__ import annotations

import pytest

from tenancy import Database
from tests.repositories.payments_support import RecordingDispatcher, recording


@pytest.fixture
def payment_events() -> RecordingDispatcher:
    """Events handed over by units of work of ``payment_events_db`` after commit."""
    return RecordingDispatcher()


@pytest.fixture
def payment_events_db(db: Database, payment_events: RecordingDispatcher) -> Database:
    """The test ``Database`` whose committed events land in ``payment_events``."""
    return recording(db, payment_events)
