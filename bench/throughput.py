"""Operations per second of an async operation run by concurrent workers, for the benchmarks."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

#: One operation; it draws what it works on from its worker's random source.
Operation = Callable[[random.Random], Awaitable[None]]


async def ops_per_second(op: Operation, seconds: float, concurrency: int) -> float:
    """Run ``op`` from ``concurrency`` workers for ``seconds``; return operations per second.

    Each worker has its own random source, seeded by its number, so runs repeat.
    """
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(n: int) -> None:
        rng = random.Random(n)
        while time.perf_counter() < deadline:
            await op(rng)
            counts[n] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return sum(counts) / (time.perf_counter() - start)
