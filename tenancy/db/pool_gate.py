"""A first-come, first-served gate in front of the connection pool.

SQLAlchemy's async pool lets a task that returns a connection take it straight
back on its next checkout, ahead of tasks already waiting: with tasks in tight
loops a few of them get every connection and the others time out. The gate
holds one permit per connection the pool may open, and a released permit goes
to the longest waiter directly, never back to the free count while anyone
waits, so waiters are served in order.
"""

from __future__ import annotations

import asyncio
from collections import deque


class PoolGate:
    """A FIFO semaphore with direct hand-off: ``await acquire()`` ... ``release()``."""

    def __init__(self, permits: int) -> None:
        self._free = permits
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """How many tasks wait for a permit."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a permit, behind every task that asked earlier."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # The permit was handed over just as this waiter gave up: pass it on.
                self.release()
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Return a permit: to the first waiter if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
