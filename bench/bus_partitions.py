"""Benchmark A2: the bus on 4 partitions with 2 consumer processes, end to end, on the standalone Redis and
on a local Redis Cluster (3 primaries + 3 replicas, tests.support.redis_cluster), each against raw pipelined
XADD of as many entries of the same size spread over the same partition streams, in the same run.

Each consumer process (bench.consumer) runs one Worker that owns its share of the partitions through the
bus's leases; the run starts publishing only once each of them owns two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio.cluster import RedisCluster

from bench.bus import GROUP, BusOptions, all_done, in_processes, make_events, publish_all
from bench.load import CpuMeter, loadavg, progress, ratio
from charla.core import constants as c
from charla.core.bus import Bus, BusConfig
from charla.core.events import InboundMessage
from charla.core.redis_client import AnyRedis, connect, text
from tests.support.helpers import eventually
from tests.support.redis_cluster import ClusterError, local_cluster

PARTITIONS = 4
CONSUMERS = 2
TOPIC = "bench:partitioned"


async def _flush(redis: AnyRedis) -> None:
    if isinstance(redis, RedisCluster):
        await redis.flushdb(target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.flushdb()


async def spread_xadd(redis: AnyRedis, streams: Sequence[str], events: Sequence[InboundMessage],
                      batch: int) -> float:
    """Seconds to XADD the events' fields to their learners' partition streams in pipelines of `batch`."""
    layout = {e.learner: streams[i % len(streams)] for i, e in enumerate(events)}
    entries = [(layout[e.learner], {"l": e.learner, "s": i, "e": e.model_dump_json()}) for i, e in enumerate(events)]
    started = time.perf_counter()
    for first in range(0, len(entries), batch):
        pipe = redis.pipeline(transaction=False)
        for stream, fields in entries[first:first + batch]:
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
        await pipe.execute()
    return time.perf_counter() - started


async def _owners_settled(redis: AnyRedis, streams: Sequence[str], names: Sequence[str]) -> None:
    async def settled() -> bool:
        owners = [await redis.get(c.LEASE_KEY.format(stream=s, group=GROUP)) for s in streams]
        return sorted(text(o) for o in owners if o) == sorted(n for n in names for _ in range(2))

    await eventually(settled, 60, "each consumer owns two partitions")


async def measure(redis_url: str, options: BusOptions, server_pids: dict[str, int], *,
                  cluster: bool) -> dict[str, object]:
    """Baseline, then publish → 2 consumer processes over 4 partitions, on the Redis at `redis_url`."""
    redis = connect(redis_url, cluster=cluster, max_connections=64)
    bus = Bus(redis, BusConfig(partitions=PARTITIONS, tagged=cluster), groups={})
    events = make_events(options.events, options.learners * 5)
    streams = bus.streams(TOPIC)
    try:
        await _flush(redis)
        progress(f"bus: raw pipelined XADD over {PARTITIONS} partition streams × {len(events)}"
                 f"{' (cluster)' if cluster else ''}")
        baseline = round(len(events) / await spread_xadd(redis, streams, events, options.batch), 1)
        await _flush(redis)
        await bus.ensure_group(TOPIC, GROUP)
        names = [f"consumer-{k}" for k in range(CONSUMERS)]
        extra = ["--partitions", str(PARTITIONS), *(["--cluster"] if cluster else [])]
        progress(f"bus: publish → {CONSUMERS} consumer processes over {PARTITIONS} partitions × {len(events)}")
        async with in_processes(redis_url, TOPIC, names, options.worker_concurrency, extra) as running, \
                all_done(bus.redis, TOPIC, len(events)) as finished:
            await _owners_settled(redis, streams, names)
            meter = CpuMeter({"benchmark": os.getpid(), **running.pids, **server_pids})
            started = time.perf_counter()
            published = started + await publish_all(bus, TOPIC, events, options.publishers)
            async with asyncio.timeout(300):
                ended = await finished
            shares = meter.shares()
        seconds = ended - started
        rate = round(len(events) / seconds, 1)
        cpu_us = {name: round(share * seconds / len(events) * 1e6, 1) for name, share in shares.items()}
        return {"redis": "cluster (3 primaries + 3 replicas)" if cluster else "standalone", "partitions": PARTITIONS,
                "consumer_processes": CONSUMERS, "events": len(events), "learners": options.learners * 5,
                "seconds": round(seconds, 3), "events_per_s": rate,
                "publishing_done_after_s": round(published - started, 3), "cpu_share_of_one_core": shares,
                "cpu_us_per_event": cpu_us,
                "handled_per_consumer": [s.get("handled") for s in running.stats],
                "duplicates": sum(s.get("duplicates", 0) for s in running.stats),
                "baseline_pipelined_xadd_per_s": baseline, "ratio_to_baseline": ratio(rate, baseline)}
    finally:
        await _flush(redis)
        await redis.aclose()


@contextlib.asynccontextmanager
async def _cluster() -> AsyncIterator[tuple[str, dict[str, int]] | None]:
    root = Path(tempfile.mkdtemp(prefix="charla-bench-cluster-"))
    try:
        with local_cluster(root) as cluster:
            pids = {f"redis-node-{k}": node.proc.pid for k, node in enumerate(cluster.nodes) if node.proc}
            yield cluster.url, pids
    except ClusterError as exc:
        progress(f"bus: no local Redis Cluster ({exc}); skipping the cluster run")
        yield None


async def run(redis_url: str, redis_pid: int | None, options: BusOptions) -> dict[str, Any]:
    """The partitioned runs, standalone then cluster; JSON-ready."""
    before = loadavg()
    runs = [await measure(redis_url, options, {"redis-server": redis_pid} if redis_pid else {}, cluster=False)]
    async with _cluster() as cluster:
        if cluster is not None:
            url, pids = cluster
            runs.append(await measure(url, options, pids, cluster=True))
    return {"loadavg_before": before, "loadavg_after": loadavg(), "handler": "no-op",
            "worker_concurrency": options.worker_concurrency, "publishers": options.publishers,
            "publish_dedupe_key": "event id", "target": {"events_per_s": 10_000, "ratio_to_baseline": 0.2},
            "runs": runs}
