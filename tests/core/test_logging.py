"""Log records from ``tenancy.log.get_logger`` carry the tenant and the operation."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from tenancy import operation, tenant_context
from tenancy.log import get_logger


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture what the ``tenancy`` loggers emit at INFO and above."""
    caplog.set_level(logging.INFO, logger="tenancy")
    return caplog


def _fields(record: logging.LogRecord) -> tuple[str, str]:
    return record.__dict__["org_id"], record.__dict__["operation"]


def test_record_carries_tenant_and_operation(logs: pytest.LogCaptureFixture) -> None:
    org_id = uuid.uuid4()

    with tenant_context(org_id), operation("create_customer"):
        get_logger("tenancy.test").info("customer created")

    (record,) = logs.records
    assert _fields(record) == (str(org_id), "create_customer")


def test_record_outside_any_tenant_says_so(logs: pytest.LogCaptureFixture) -> None:
    get_logger("tenancy.test").info("startup")

    (record,) = logs.records
    assert _fields(record) == ("-", "-")


async def test_concurrent_tasks_log_their_own_tenant(logs: pytest.LogCaptureFixture) -> None:
    logger = get_logger("tenancy.test")
    both_bound = asyncio.Barrier(2)

    async def work(org_id: uuid.UUID) -> None:
        with tenant_context(org_id), operation(f"op-{org_id}"):
            await both_bound.wait()
            logger.info("working for %s", org_id)

    a, b = uuid.uuid4(), uuid.uuid4()
    await asyncio.gather(work(a), work(b))

    logged = {(r.getMessage(), *_fields(r)) for r in logs.records}
    assert logged == {(f"working for {o}", str(o), f"op-{o}") for o in (a, b)}


def test_logger_outside_the_tenancy_namespace_is_placed_inside_it() -> None:
    assert get_logger("payments").name == "tenancy.payments"


def test_format_string_with_tenant_fields_always_renders(
    logs: pytest.LogCaptureFixture,
) -> None:
    get_logger("tenancy.test").warning("no tenant here")

    formatted = logging.Formatter("%(org_id)s %(operation)s %(message)s").format(logs.records[0])
    assert formatted == "- - no tenant here"
