"""An event loop on a helper thread, for running async work from synchronous code.

Hypothesis's state machines are synchronous. Their steps hand coroutines to
this loop and wait for the result, so they never touch pytest-asyncio's
session loop, which is not running while a synchronous test executes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

ResultT = TypeVar("ResultT")


class LoopThread:
    """A private event loop running on its own daemon thread until ``close``."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.timeout = timeout
        self._thread = threading.Thread(target=self._serve, name="property-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, ResultT]) -> ResultT:
        """Run ``coroutine`` on the loop and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.timeout)

    def close(self) -> None:
        """Finish async generators, stop the loop and join the thread."""
        self.run(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(self.timeout)
        self.loop.close()
