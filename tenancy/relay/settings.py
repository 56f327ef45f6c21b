"""Settings of the outbox relay (``TENANCY_RELAY_*``) and its Kafka producer (``TENANCY_KAFKA_*``).

Defaults match ``docker-compose.yml``: Redpanda on 127.0.0.1:9092, which supports
idempotent producers. Brokers that do not (the test broker) need
``TENANCY_KAFKA_ENABLE_IDEMPOTENCE=false``.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

from tenancy.settings import RELAY_ROLE, TenancySettings, async_url

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"


def default_relay_id() -> str:
    """Return a relay id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class KafkaSettings(BaseSettings):
    """Connection and producer settings; every field maps to ``TENANCY_KAFKA_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TENANCY_KAFKA_", extra="ignore")

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    client_id: str = "tenancy"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    acks: Literal["all", "1", "0"] = "all"
    enable_idempotence: bool = Field(
        default=True, description="Redpanda and Kafka support it; the bundled test broker does not."
    )
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    linger_ms: int = Field(
        default=0,
        ge=0,
        description="The relay queues a whole round before awaiting it, so it batches anyway.",
    )
    max_batch_size: int = Field(default=256 * 1024, ge=1024)
    max_request_size: int = Field(default=1024 * 1024, ge=1024)
    request_timeout_ms: int = Field(default=10_000, ge=100)

    send_timeout: float = Field(
        default=15.0, gt=0, description="Bound on one batch: enqueue plus every acknowledgement."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Bound on producer start.")
    close_timeout: float = Field(default=5.0, gt=0, description="Bound on producer stop.")

    @model_validator(mode="after")
    def _idempotence_needs_all_acks(self) -> Self:
        if self.enable_idempotence and self.acks != "all":
            raise ValueError("enable_idempotence requires acks='all'")
        return self


class RelaySettings(BaseSettings):
    """How the relay claims, retries and retains outbox rows (``TENANCY_RELAY_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="TENANCY_RELAY_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="URL as the relay role; default: derived from TENANCY_ADMIN_DATABASE_URL.",
    )
    relay_id: str = Field(default_factory=default_relay_id)
    topic_prefix: str = Field(default="tenancy.", pattern=r"^[A-Za-z0-9._-]*$")

    batch_size: int = Field(default=500, ge=1, le=10_000)
    poll_interval: float = Field(
        default=1.0, gt=0, description="Fallback wake-up when no notification arrives."
    )
    lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a claim lasts before other relays may take it."
    )
    max_attempts: int = Field(
        default=10,
        ge=1,
        description="Attempts an event gets against permanent broker errors (too large, "
        "invalid, not authorized) before it is dead-lettered; transient errors use none.",
    )
    backoff_initial: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)

    retention_seconds: float = Field(
        default=7 * 24 * 3600.0, ge=0, description="Age after which published rows are deleted."
    )
    retention_interval: float = Field(default=60.0, gt=0)
    retention_batch: int = Field(default=5_000, ge=1)
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65_535,
        description="Serve /metrics and /healthz on this port (0: any free one); off when unset. "
        "Needs the metrics extra.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Interface of /metrics and /healthz (local by default)."
    )
    metrics_interval: float = Field(
        default=5.0, gt=0, description="Seconds between refreshes of the outbox gauges."
    )

    def backoff(self, attempts: int) -> float:
        """Return the delay before retry number ``attempts`` (1-based), doubling up to the cap."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 s is past any sane cap
        return float(min(self.backoff_max, self.backoff_initial * 2**exponent))


def relay_url(settings: TenancySettings, relay_settings: RelaySettings) -> URL:
    """Return the relay role's URL: ``relay_settings.database_url``, else derived from admin."""
    if relay_settings.database_url is not None:
        return async_url(relay_settings.database_url)
    return settings.url_for_role(RELAY_ROLE)
