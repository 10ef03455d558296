"""Process wiring: long-lived clients opened once, the running-stack file, heartbeats, agent processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

from charla.core import constants as c
from charla.core import metrics
from charla.core.bus import Bus, BusConfig
from charla.core.db import open_pool
from charla.core.redis_client import connect
from charla.core.settings import Settings
from charla.core.worker import Handler, Worker, WorkerStats

log = logging.getLogger(__name__)


class NotConfigured(RuntimeError):
    """A service URL is neither configured nor provided by a running `charla up`."""


@dataclass(frozen=True)
class Urls:
    database_url: str
    redis_url: str


def stack_file(settings: Settings) -> Path:
    """Where `charla up` records the URLs of the embedded services it started."""
    return settings.home / "run" / "stack.json"


def resolve_urls(settings: Settings) -> Urls:
    """DATABASE_URL / REDIS_URL, else those of the embedded services of a running `charla up`."""
    recorded: dict[str, str] = {}
    path = stack_file(settings)
    if path.exists():
        recorded = json.loads(path.read_text())
    database_url = settings.database_url or recorded.get("database_url")
    redis_url = settings.redis_url or recorded.get("redis_url")
    if not database_url or not redis_url:
        missing = " and ".join(n for n, v in (("DATABASE_URL", database_url), ("REDIS_URL", redis_url)) if not v)
        raise NotConfigured(f"{missing} unset and no `charla up` is running under {settings.home}: "
                            f"start the stack with `charla up`, or set {missing}")
    return Urls(database_url, redis_url)


def bus_config(settings: Settings) -> BusConfig:
    return BusConfig(max_deliveries=settings.bus_max_deliveries, lease_ms=settings.bus_lease_ms,
                     retention_s=settings.bus_retention_s, max_backlog=settings.bus_max_backlog,
                     dedupe_ttl_s=settings.dedupe_ttl_s, partitions=settings.bus_partitions,
                     tagged=settings.redis_cluster, previous_partitions=settings.bus_previous_partitions)


@dataclass
class Resources:
    """The long-lived clients of one process, opened at startup and passed to whatever needs them."""

    settings: Settings
    redis: Redis
    pool: AsyncConnectionPool
    http: aiohttp.ClientSession  # outbound HTTP (Graph API, media); the Twilio SDK brings its own
    bus: Bus
    # Closers of clients opened later by handlers (e.g. the Twilio SDK session), run at shutdown.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Loops an agent runs beside its workers (e.g. re-trying deferred turns), each until its stop event.
    background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(default_factory=list)


@asynccontextmanager
async def open_resources(settings: Settings, *, pool_size: int = 10) -> AsyncIterator[Resources]:
    urls = resolve_urls(settings)
    redis = connect(urls.redis_url, cluster=settings.redis_cluster, max_connections=settings.redis_max_connections)
    pool = await open_pool(urls.database_url, max_size=pool_size,
                           transaction_pooler=settings.db_transaction_pooler)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15, connect=5),
                                 connector=aiohttp.TCPConnector(limit=100), raise_for_status=False)
    res = Resources(settings, redis, pool, http, Bus(redis, bus_config(settings)))
    try:
        try:
            await declare_groups(res.bus)
        except RedisError as exc:  # the first publish declares them too
            log.warning("Redis unavailable at startup (%s); carrying on, /healthz reports it", exc)
        yield res
    finally:
        for close in reversed(res.closers):
            await close()
        await http.close()
        await pool.close()
        await redis.aclose()


async def declare_groups(bus: Bus) -> None:
    """Create every known consumer group that does not exist yet (see constants.CONSUMER_GROUPS)."""
    for stream, groups in c.CONSUMER_GROUPS.items():
        for group in groups:
            await bus.ensure_group(stream, group)


def consumer_name(agent: str) -> str:
    """CHARLA_CONSUMER (stable across restarts under the supervisor), else host-pid."""
    return os.environ.get("CHARLA_CONSUMER") or f"{agent}-{socket.gethostname()}-{os.getpid()}"


async def heartbeat(redis: Redis, agent: str, consumer: str, interval: float,
                    status: Callable[[], dict[str, object]], closing: asyncio.Event,
                    registry: CollectorRegistry | None = metrics.REGISTRY) -> None:
    """Refresh this process's heartbeat key, and the snapshot of its metrics `registry` beside it, until
    `closing` (through Redis outages); both expire by themselves if the process dies. Stopped by an event:
    redis-py may swallow a cancellation mid-command."""
    key = c.HEARTBEAT_KEY.format(agent=agent, consumer=consumer)
    started = time.time()
    while not closing.is_set():
        body = {"agent": agent, "consumer": consumer, "pid": os.getpid(), "host": socket.gethostname(),
                "started": started, "at": time.time(), **status()}
        try:
            await redis.set(key, json.dumps(body), px=int(interval * 3000))
            if registry is not None:
                await metrics.publish(redis, agent, consumer, int(interval * 3000), registry)
        except RedisError as exc:
            log.warning("heartbeat not written (%s); retrying", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), interval)
    with contextlib.suppress(RedisError):
        await redis.delete(key)
        await metrics.withdraw(redis, agent, consumer)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (graceful stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_workers(res: Resources, *, agent: str, handlers: dict[str, Handler], stop: asyncio.Event,
                      concurrency: int | None = None) -> list[Worker]:
    """Run one agent: a worker per stream it consumes (`handlers`), one heartbeat, until `stop`."""
    consumer = consumer_name(agent)
    slots = concurrency or res.settings.agent_concurrency
    workers = [Worker(res.bus, stream=stream, group=agent, consumer=consumer, handler=handler, concurrency=slots)
               for stream, handler in handlers.items()]

    def status() -> dict[str, object]:
        totals = {key: sum(getattr(w.stats, key) for w in workers) for key in vars(WorkerStats())}
        return {**totals, "in_flight": sum(w.in_flight for w in workers)}

    closing = asyncio.Event()
    beat = asyncio.create_task(heartbeat(res.redis, agent, consumer, res.settings.heartbeat_s, status, closing))
    log.info("agent %s consuming %s as %s", agent, ", ".join(handlers), consumer)
    try:
        await asyncio.gather(*(w.run(stop) for w in workers), *(loop(stop) for loop in res.background))
    finally:
        closing.set()
        await beat
    return workers
