"""The measuring consumer of the relay benchmark, in a process of its own.

In the benchmark's own process it would share one event loop with 500 commits a
second and take its turn behind them: its receive times would measure that loop,
not the relay. Here it prints a line per event as it arrives, ``event_id`` then
the wall-clock receive time and the record's timestamp (the relay's send time),
both in seconds; the benchmark reads them and compares with its commit times.

    python -m bench.relay_consumer BOOTSTRAP TOPIC_PREFIX FETCH_MAX_WAIT_MS
"""

from __future__ import annotations

import asyncio
import sys
import time

from bench.relay_events import BenchOrderUpdated
from tenancy.relay.kafka import EventConsumer
from tenancy.relay.settings import KafkaSettings


async def consume(bootstrap: str, topic_prefix: str, fetch_max_wait_ms: int) -> None:
    """Print every new event until killed."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False)
    async with EventConsumer(
        kafka,
        [BenchOrderUpdated],
        topic_prefix=topic_prefix,
        from_beginning=False,
        fetch_max_wait_ms=fetch_max_wait_ms,
    ) as consumer:
        async for item in consumer:
            received = time.time()
            sent = (item.timestamp_ms or 0) / 1000
            sys.stdout.write(f"{item.event.event_id} {received:.6f} {sent:.3f}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(consume(sys.argv[1], sys.argv[2], int(sys.argv[3])))
