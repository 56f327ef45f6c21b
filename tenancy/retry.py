"""Re-run a whole unit of work when the database asks for a retry.

Serialization failures and deadlocks (``RetryableError``) abort the transaction;
the only correct recovery is to run all of its work again from the start, in a
new transaction, which is what ``run_with_retry`` does, with capped, jittered
exponential backoff and a bound on attempts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from tenancy.errors import RetryableError
from tenancy.log import get_logger

ResultT = TypeVar("ResultT")
UnitOfWorkT = TypeVar("UnitOfWorkT")

logger = get_logger(__name__)


async def run_with_retry(
    unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWorkT]],
    work: Callable[[UnitOfWorkT], Awaitable[ResultT]],
    *,
    attempts: int = 5,
    base_delay: float = 0.01,
    max_delay: float = 0.5,
) -> ResultT:
    """Run ``work`` in a fresh unit of work; re-run it on ``RetryableError``, up to ``attempts``.

    ``work`` must commit itself (``await uow.commit()``) and must be safe to run
    again: every attempt starts from a rolled-back transaction.

    Raises:
        RetryableError: the last attempt failed too.
        ValueError: ``attempts`` is less than 1.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            async with unit_of_work() as uow:
                return await work(uow)
        except RetryableError:
            if attempt == attempts:
                raise
            # Full jitter keeps colliding transactions from retrying in lockstep.
            delay = random.uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))  # noqa: S311
            logger.info("retrying after a retryable failure", extra={"attempt": attempt})
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
