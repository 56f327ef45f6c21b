"""A hand-written driver for a coroutine: every suspension counted, any one of them cancelled.

``asyncio.Task`` runs a coroutine by calling ``send(None)`` until it yields: a
future it waits for (``await fut`` marks it with ``_asyncio_future_blocking``),
or ``None`` for a bare ``yield`` (``asyncio.sleep(0)``). ``drive`` does the same
inside the caller's task, so context variables work, and numbers the yields.

A cancellation can land at suspension ``k`` in two ways, and ``drive`` does what
``Task.cancel`` does in each:

* ``WHILE_WAITING``: the future is still pending (no reply yet). It is cancelled,
  so asyncpg's own callbacks on it run as in production, and the coroutine is
  resumed and sees ``CancelledError``.
* ``ON_RESUMPTION``: the future completed (the reply arrived) but the task was
  cancelled before it ran again. The coroutine never sees the result:
  ``CancelledError`` is thrown in where it waited.

``drive`` then keeps driving until the coroutine ends, because its cleanup awaits too.

One difference from a task remains: ``asyncio.current_task()`` inside the
coroutine is the caller's task, which is not being cancelled (``cancelling()`` is
0). The tests with real tasks cover code that relies on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: A coroutine still suspending after this many steps is abandoned (closed).
MAX_STEPS = 1_000


class Landing(Enum):
    """When, relative to the reply, a cancellation reaches the suspended coroutine."""

    WHILE_WAITING = "while waiting"
    ON_RESUMPTION = "on resumption"


@dataclass(frozen=True)
class Run:
    """How a driven coroutine ended: its suspensions, and the error it raised, if any."""

    suspensions: int
    error: BaseException | None

    @property
    def cancelled(self) -> bool:
        """Whether the coroutine ended with ``CancelledError``."""
        return isinstance(self.error, asyncio.CancelledError)


async def drive(
    coro: Coroutine[Any, Any, Any],
    *,
    cancel_at: int | None = None,
    landing: Landing = Landing.WHILE_WAITING,
    again: bool = False,
) -> Run:
    """Run ``coro`` to its end, cancelling it at suspension ``cancel_at`` (0-based).

    With ``again``, every later suspension is cancelled too, as an anyio cancel
    scope does: the cleanup's own awaits are interrupted as well.
    """
    suspensions = 0
    throw: BaseException | None = None
    try:
        while suspensions < MAX_STEPS:
            try:
                yielded = coro.throw(throw) if throw is not None else coro.send(None)
            except StopIteration:
                return Run(suspensions, None)
            except BaseException as exc:  # the coroutine's own outcome, whatever it is
                return Run(suspensions, exc)
            throw = None
            cancel = cancel_at is not None and (
                suspensions == cancel_at or (again and suspensions > cancel_at)
            )
            suspensions += 1
            if yielded is None:
                # A bare yield: the task is merely rescheduled; a cancel lands on resumption.
                if cancel:
                    throw = asyncio.CancelledError()
                await asyncio.sleep(0)
                continue
            # What Task.__step does with a future it is handed.
            yielded._asyncio_future_blocking = False
            if cancel and (landing is Landing.ON_RESUMPTION or not yielded.cancel()):
                throw = asyncio.CancelledError()
            # Wait with a done callback, registered after the awaiting code's own
            # callbacks, as the task's wake-up is; then resume the coroutine.
            await asyncio.wait([yielded])
        return Run(suspensions, RuntimeError(f"still running after {MAX_STEPS} suspensions"))
    finally:
        coro.close()
