"""Benchmark C: text turns through the whole in-process stack (tests.support.harness: orchestrator, every agent
but voice, fake Graph and fake Groq) on one Redis and on the local Redis Cluster (3 primaries + 3 replicas,
CHARLA_REDIS_CLUSTER=true). The same closed loop of signed webhooks on both, each answered before the next
is sent (50 learners), after a warm-up: webhook-to-send latency, and Redis commands per turn from the
servers' own counters (background work included: heartbeats, leases, idle blocking reads), per primary on
the cluster. Part of `make bench` (`python -m bench --only cluster`); `python -m bench.cluster_app [turns]`
prints its JSON alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from bench.load import percentiles_ms
from bench.services import started_services
from charla.core.db import migrate
from tests.support.harness import Stack, running_stack
from tests.support.payloads import text_webhook
from tests.support.redis_cluster import local_cluster

WARMUP = 20
TEXT = "Hola, ayer fui al mercado y compré manzanas."


async def commands(url: str, cluster: bool) -> dict[str, int]:
    """Commands each primary has processed so far (Lua-internal calls included)."""
    if not cluster:
        async with Redis.from_url(url) as one:
            return {"server": int((await one.info("stats"))["total_commands_processed"])}
    many = RedisCluster.from_url(url)
    try:
        found: dict[str, Any] = await many.info("stats", target_nodes=RedisCluster.PRIMARIES)
    finally:
        await many.aclose()
    return {node: int(stats["total_commands_processed"]) for node, stats in sorted(found.items())}


async def loop(stack: Stack, first: int, count: int, tag: str) -> list[float]:
    """Seconds from each webhook's POST to its reply's send request, one turn at a time (message ids new to
    the database: both runs share it)."""
    took = []
    for n in range(first, first + count):
        started = time.perf_counter()
        assert (await stack.post(text_webhook(f"3460{n % 50:07d}", f"wamid.{tag}{n}", TEXT))).status_code == 200
        await stack.fake.wait_for(n + 1, seconds=30)
        took.append(time.perf_counter() - started)
    return took


async def measure(db: str, url: str, cluster: bool, turns: int) -> dict[str, Any]:
    async with running_stack(db, url, CHARLA_REDIS_CLUSTER=str(cluster).lower()) as stack:
        tag = "cluster" if cluster else "single"
        await loop(stack, 0, WARMUP, tag)
        before = await commands(url, cluster)
        took = await loop(stack, WARMUP, turns, tag)
        after = await commands(url, cluster)
    spent = {node: after[node] - before[node] for node in after}
    return {"turns": turns, "webhook_to_send": percentiles_ms(took),
            "redis_commands_per_turn": round(sum(spent.values()) / turns, 1),
            "share_per_primary": [round(v / max(sum(spent.values()), 1), 2) for v in spent.values()]}


async def run(turns: int) -> dict[str, Any]:
    with started_services() as services, tempfile.TemporaryDirectory() as root, \
            local_cluster(Path(root)) as cluster:
        await migrate(services.database_url)
        single = await measure(services.database_url, services.redis_url, False, turns)
        async with RedisCluster.from_url(cluster.url) as client:
            await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        return {"standalone": single, "cluster_3_primaries": await measure(services.database_url, cluster.url,
                                                                           True, turns)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200)), indent=2))
