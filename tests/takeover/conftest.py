"""Fixtures of the takeover category: the event suite's broker, for the consumer checks."""

from tests.events.conftest import broker, kafka_settings

__all__ = ["broker", "kafka_settings"]
