"""Benchmark A: events/s through Bus.publish → Worker (XREADGROUP → handler → complete/XACK).

Compared, in the same run and on the same Redis, with raw pipelined XADD of as many entries of the same
size. Completion is observed on the group's done-events channel, which Bus.complete publishes to in the
same script as its XACK, so counting costs the consumers nothing extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from bench.consumer import noop
from bench.load import loadavg, progress, ratio
from bench.services import UsageMeter
from charla.core import constants as c
from charla.core.bus import Bus
from charla.core.events import Identity, InboundMessage
from charla.core.worker import Worker
from tests.support.helpers import eventually

GROUP = "bench"
PLACEMENTS = {"processes": "one `python -m bench.consumer` process per consumer",
              "tasks": "asyncio tasks in the benchmark process, sharing one Bus (not the publishers' client)"}


@dataclass
class Consumers:
    """What a placement yields: consumer process ids (for CPU shares) and, once stopped, each one's stats."""

    pids: dict[str, int]
    stats: list[dict[str, int]] = field(default_factory=list)


Placement = Callable[[str, Sequence[str]], AbstractAsyncContextManager[Consumers]]


@dataclass(frozen=True)
class BusOptions:
    """Sizes of the bus benchmark."""

    events: int
    learners: int = 20
    publishers: int = 50
    worker_concurrency: int = 8
    batch: int = 100


def make_events(count: int, learners: int) -> list[InboundMessage]:
    """`count` inbound text messages spread round-robin over `learners` learners."""
    events = []
    for i in range(count):
        wa_id = f"3460000{i % learners:04d}"
        events.append(InboundMessage(learner=f"wa:{wa_id}", provider="meta", message_id=f"wamid.BUS{i:08d}",
                                     identity=Identity(wa_id=wa_id, name="Learner"), kind="text",
                                     text=f"Hola, ¿qué tal? Esta es mi frase número {i} para practicar."))
    return events


async def pipelined_xadd(redis: Redis, stream: str, events: Sequence[InboundMessage], batch: int) -> float:
    """Seconds to XADD the events' fields (l, s, e) in non-transactional pipelines of `batch`."""
    entries = [{"l": e.learner, "s": i, "e": e.model_dump_json()} for i, e in enumerate(events)]
    started = time.perf_counter()
    for first in range(0, len(entries), batch):
        pipe = redis.pipeline(transaction=False)
        for fields in entries[first:first + batch]:
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
        await pipe.execute()
    return time.perf_counter() - started


async def publish_all(bus: Bus, stream: str, events: Sequence[InboundMessage], concurrency: int) -> float:
    """Seconds to Bus.publish every event (dedupe key = event id, as the orchestrator does), `concurrency`
    awaiting publishers at a time (1: strictly sequential)."""
    pending = iter(events)

    async def publisher() -> None:
        for event in pending:
            await bus.publish(stream, event, dedupe_key=event.id)

    started = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(concurrency)))
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def in_processes(redis_url: str, stream: str, names: Sequence[str], concurrency: int,
                       extra: Sequence[str] = ()) -> AsyncIterator[Consumers]:
    """Run one consumer process per name (`extra`: more bench.consumer options); on exit SIGTERM them and
    collect their stats."""
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.consumer", redis_url, stream, GROUP,
                                                  name, str(concurrency), *extra, stdin=asyncio.subprocess.DEVNULL,
                                                  stdout=asyncio.subprocess.PIPE) for name in names]
    consumers = Consumers({name: proc.pid for name, proc in zip(names, procs, strict=True)})
    try:
        yield consumers
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            out, _ = await proc.communicate()
            consumers.stats.append(json.loads(out) if out.strip() else {"exit_code": proc.returncode or 0})


@contextlib.asynccontextmanager
async def in_tasks(redis_url: str, stream: str, names: Sequence[str], concurrency: int) -> AsyncIterator[Consumers]:
    """Run one Worker task per name in this process, sharing one Bus of their own (as an agent process
    would); on exit stop them and collect their stats."""
    redis = Redis.from_url(redis_url)
    bus = Bus(redis)
    stop = asyncio.Event()
    workers = [Worker(bus, stream=stream, group=GROUP, consumer=name, handler=noop, concurrency=concurrency)
               for name in names]
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    consumers = Consumers({})
    try:
        yield consumers
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        consumers.stats.extend(vars(worker.stats) for worker in workers)
        await redis.aclose()


async def _count(pubsub: PubSub, expected: int) -> float:
    seen = 0
    async for _ in pubsub.listen():
        seen += 1
        if seen >= expected:
            return time.perf_counter()
    raise RuntimeError("done-events subscription ended early")


@contextlib.asynccontextmanager
async def all_done(redis: Redis, stream: str, expected: int) -> AsyncIterator[asyncio.Task[float]]:
    """A task resolving to the perf_counter time at which `expected` entries were completed by the group."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(c.DONE_CHANNEL.format(stream=stream, group=GROUP))
    task = asyncio.create_task(_count(pubsub, expected))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _consumers_ready(redis: Redis, stream: str, names: Sequence[str]) -> None:
    async def ready() -> bool:
        rows: list[dict[str, Any]] = await redis.xinfo_consumers(stream, GROUP)
        return {row["name"].decode() for row in rows} >= set(names)

    await eventually(ready, 30, "consumers reading")


async def end_to_end(bus: Bus, events: Sequence[InboundMessage], placement: Placement, consumers: int,
                     publishers: int) -> dict[str, object]:
    """Publish all events while `consumers` Workers consume them; time until the last one is completed."""
    stream = f"bench:e2e:{consumers}"
    await bus.redis.flushdb()
    await bus.ensure_group(stream, GROUP)
    names = [f"consumer-{k}" for k in range(consumers)]
    async with placement(stream, names) as running, all_done(bus.redis, stream, len(events)) as finished:
        await _consumers_ready(bus.redis, stream, names)
        meter = await UsageMeter.begin(bus.redis, {"benchmark": os.getpid(), **running.pids})
        started = time.perf_counter()
        published = started + await publish_all(bus, stream, events, publishers)
        async with asyncio.timeout(300):
            ended = await finished
        usage = await meter.end(len(events))
    seconds = ended - started
    return {"consumers": consumers, "seconds": round(seconds, 3), "events_per_s": round(len(events) / seconds, 1),
            "publishing_done_after_s": round(published - started, 3), **usage,
            "handled_per_consumer": [s.get("handled") for s in running.stats],
            "duplicates": sum(s.get("duplicates", 0) for s in running.stats)}


async def _rates(bus: Bus, events: Sequence[InboundMessage], batch: int, publishers: int) -> dict[str, float]:
    measures: dict[str, Callable[[], Awaitable[float]]] = {
        "pipelined_xadd": lambda: pipelined_xadd(bus.redis, "bench:raw", events, batch),
        "publish_sequential": lambda: publish_all(bus, "bench:seq", events, 1),
        f"publish_concurrent_{publishers}": lambda: publish_all(bus, "bench:conc", events, publishers)}
    rates: dict[str, float] = {}
    for name, measure in measures.items():
        await bus.redis.flushdb()
        progress(f"bus: {name} × {len(events)}")
        rates[name] = round(len(events) / await measure(), 1)
    return rates


async def run(redis_url: str, options: BusOptions) -> dict[str, object]:
    """The whole bus benchmark; returns its JSON-ready result."""
    before = loadavg()
    events = make_events(options.events, options.learners)
    redis = Redis.from_url(redis_url)
    bus = Bus(redis)
    try:
        rates = await _rates(bus, events, options.batch, options.publishers)
        baseline = rates["pipelined_xadd"]
        placements: dict[str, Placement] = {
            "processes": lambda s, n: in_processes(redis_url, s, n, options.worker_concurrency),
            "tasks": lambda s, n: in_tasks(redis_url, s, n, options.worker_concurrency)}
        runs: list[dict[str, object]] = []
        for where, placement in placements.items():
            for consumers in (1, 2):
                progress(f"bus: publish → {consumers} consumer(s) as {where} × {len(events)}")
                result = await end_to_end(bus, events, placement, consumers, options.publishers)
                runs.append({"placement": where, "placement_detail": PLACEMENTS[where], **result,
                             "ratio_to_baseline": ratio(result["events_per_s"], baseline)})
        await redis.flushdb()
    finally:
        await redis.aclose()
    return {"loadavg_before": before, "loadavg_after": loadavg(), "events": options.events,
            "learners": options.learners, "payload_bytes": len(events[0].model_dump_json()),
            "handler": "no-op", "worker_concurrency": options.worker_concurrency,
            "publishers_during_end_to_end": options.publishers, "publish_dedupe_key": "event id",
            "baseline": {"what": f"redis-py pipelined XADD, batches of {options.batch}, same fields and size",
                         "events_per_s": baseline},
            "publish_only": {name: {"events_per_s": rate, "ratio_to_baseline": ratio(rate, baseline)}
                             for name, rate in rates.items() if name != "pipelined_xadd"},
            "end_to_end": runs}
