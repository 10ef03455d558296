"""A bus consumer process for the crash tests and the throughput benchmark: one Worker until SIGTERM.

Usage: python -m tests.support.bus_consumer REDIS_URL TOPIC GROUP CONSUMER CONCURRENCY
           [--partitions N] [--cluster] [--lease-ms MS] [--record FILE]
The handler does nothing; with --record it appends "handled <learner> <seq> <id> <monotonic ns>" once the
handler ran and "completed <id>" once the bus's completion script returned (both flushed at once, so a
SIGKILL loses at most the line being written). On exit it prints the worker's stats as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO

import uvloop

from charla.core.bus import Bus, BusConfig, Delivery
from charla.core.redis_client import connect
from charla.core.runtime import stop_on_signals
from charla.core.worker import Handler, Worker, WorkerStats


async def noop(_: Delivery) -> None:
    """The benchmark handler: does nothing, so only the bus machinery is measured."""


class RecordingBus(Bus):
    """A Bus that notes each completion in `record` once Redis answered it."""

    record: IO[str] | None = None

    async def complete(self, delivery: Delivery, group: str, token: str) -> None:
        await super().complete(delivery, group, token)
        if self.record is not None:
            self.record.write(f"completed {delivery.event().id}\n")
            self.record.flush()


def handler(record: IO[str] | None) -> Handler:
    """The no-op handler, noting each event it ran for in `record`."""

    async def handle(delivery: Delivery) -> None:
        if record is not None:
            record.write(f"handled {delivery.learner} {delivery.seq} {delivery.event().id} {time.monotonic_ns()}\n")
            record.flush()

    return handle


async def consume(args: argparse.Namespace) -> WorkerStats:
    """Run one Worker on the topic for the group until SIGTERM/SIGINT; return its stats."""
    stop = stop_on_signals()
    redis = connect(args.redis_url, cluster=args.cluster, max_connections=64)
    record = open(args.record, "a") if args.record else None  # noqa: SIM115, ASYNC230 - lives as long as the process
    try:
        bus = RecordingBus(redis, BusConfig(partitions=args.partitions, tagged=args.cluster, lease_ms=args.lease_ms))
        bus.record = record
        worker = Worker(bus, stream=args.topic, group=args.group, consumer=args.consumer,
                        handler=handler(record) if record else noop, concurrency=args.concurrency)
        await worker.run(stop)
        return worker.stats
    finally:
        await redis.aclose()
        if record is not None:
            record.close()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.bus_consumer")
    for name in ("redis_url", "topic", "group", "consumer"):
        parser.add_argument(name)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--lease-ms", type=int, default=15_000)
    parser.add_argument("--record")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Entry point: parse the arguments, consume, print the stats."""
    stats = uvloop.run(consume(parse(argv)))
    print(json.dumps(vars(stats)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
