"""A bus consumer process for the throughput benchmark: one Worker with a no-op handler until SIGTERM.

Usage: python -m bench.consumer REDIS_URL STREAM GROUP CONSUMER CONCURRENCY
On exit it prints the worker's stats as one JSON line on stdout.
"""

from __future__ import annotations

import json
import sys

import uvloop
from redis.asyncio import Redis

from charla.core.bus import Bus, Delivery
from charla.core.runtime import stop_on_signals
from charla.core.worker import Worker, WorkerStats


async def noop(_: Delivery) -> None:
    """The benchmark handler: does nothing, so only the bus machinery is measured."""


async def consume(redis_url: str, stream: str, group: str, consumer: str, concurrency: int) -> WorkerStats:
    """Run one Worker on `stream` for `group` until SIGTERM/SIGINT; return its stats."""
    stop = stop_on_signals()
    redis = Redis.from_url(redis_url)
    try:
        worker = Worker(Bus(redis), stream=stream, group=group, consumer=consumer, handler=noop,
                        concurrency=concurrency)
        await worker.run(stop)
        return worker.stats
    finally:
        await redis.aclose()


def main(argv: list[str]) -> None:
    """Entry point: parse the positional arguments, consume, print the stats."""
    redis_url, stream, group, consumer, concurrency = argv
    stats = uvloop.run(consume(redis_url, stream, group, consumer, int(concurrency)))
    print(json.dumps(vars(stats)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
