"""The stepper that enumerates await points: it counts them and cancels as a task would."""

from __future__ import annotations

import asyncio

import pytest

from tests.cancellation.stepper import Landing, drive


async def _reply_soon(value: str) -> str:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(_reply, future, value)
    return await future


def _reply(future: asyncio.Future[str], value: str) -> None:
    # As a driver's protocol does: a waiter cancelled meanwhile gets no reply.
    if not future.done():
        future.set_result(value)


async def _three_awaits(seen: list[str]) -> None:
    seen.append(await _reply_soon("first"))
    await asyncio.sleep(0)
    seen.append(await _reply_soon("second"))


async def test_every_suspension_is_counted_and_every_reply_delivered() -> None:
    seen: list[str] = []

    run = await drive(_three_awaits(seen))

    assert (run.suspensions, run.error, seen) == (3, None, ["first", "second"])


async def test_a_cancellation_while_waiting_cancels_the_awaited_future() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait() -> None:
        await future

    run = await drive(wait(), cancel_at=0, landing=Landing.WHILE_WAITING)

    assert run.cancelled
    assert future.cancelled()


async def test_a_cancellation_on_resumption_loses_the_reply() -> None:
    seen: list[str] = []

    run = await drive(_three_awaits(seen), cancel_at=2, landing=Landing.ON_RESUMPTION)

    assert run.cancelled
    assert seen == ["first"]


@pytest.mark.parametrize("again", [False, True])
async def test_cleanup_awaits_are_driven_and_cancelled_again_only_when_asked(again: bool) -> None:
    cleaned: list[str] = []

    async def with_cleanup() -> None:
        try:
            await _reply_soon("work")
        finally:
            try:
                cleaned.append(await _reply_soon("cleanup"))
            except asyncio.CancelledError:
                cleaned.append("cancelled")
                raise

    run = await drive(with_cleanup(), cancel_at=0, again=again)

    assert run.cancelled
    assert cleaned == (["cancelled"] if again else ["cleanup"])
