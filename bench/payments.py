"""Benchmark P: the entitlement check on the reply path.

Cache hit (one Redis GET of the cached entitlement), cache miss (PostgreSQL read, then the cache filled),
and the atomic counting the reply's transaction does (free quota UPDATE, paid daily UPSERT). Baselines in
the same run: a raw Redis GET and a `SELECT 1` round trip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import psycopg
from redis.asyncio import Redis

from bench.load import loadavg, percentiles_ms, progress, ratio
from bench.services import Services
from charla.core.db import open_pool
from charla.core.events import Identity
from charla.core.settings import Settings
from charla.store import learners
from payments import entitlements


async def _timed(work: Callable[[], Awaitable[object]], n: int) -> dict[str, float | None]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    return percentiles_ms(samples)


async def run(services: Services, n: int = 2000) -> dict[str, object]:
    before = loadavg()
    redis = Redis.from_url(services.redis_url)
    pool = await open_pool(services.database_url, max_size=2)
    settings = Settings(FREE_MESSAGES=10**9, PAID_DAILY_MESSAGES=10**9)
    async with await psycopg.AsyncConnection.connect(services.database_url, autocommit=True) as conn:
        me = await learners.upsert(conn, Identity(console=f"bench-{uuid.uuid4().hex[:6]}"))
    key = f"charla:entitlement:{me}"
    try:
        progress(f"payments: {n} entitlement checks per case")
        hit = await _timed(lambda: entitlements.entitlement(redis, pool, me), n)

        async def miss() -> object:
            await redis.delete(key)
            return await entitlements.entitlement(redis, pool, me)

        missed = await _timed(miss, n)
        redis_get = await _timed(lambda: redis.get(key), n)

        async def count(premium: bool) -> object:
            async with pool.connection() as conn:
                return await entitlements.admit(conn, me, premium, 1, "Europe/Madrid", datetime.now(UTC), settings)

        free = await _timed(lambda: count(False), n)
        paid = await _timed(lambda: count(True), n)

        async def select_1() -> object:
            async with pool.connection() as conn:
                return await conn.execute("SELECT 1")

        baseline_pg = await _timed(select_1, n)
    finally:
        await pool.close()
        await redis.aclose()
    return {"what": (__doc__ or "").strip().split("\n\n", 1)[-1], "loadavg_before": before,
            "cache_hit": hit, "cache_miss": missed, "count_free": free, "count_paid_daily": paid,
            "baseline_redis_get": redis_get, "baseline_select_1": baseline_pg,
            "ratios": {"hit_p50_vs_redis_get": ratio(hit["p50_ms"], redis_get["p50_ms"]),
                       "miss_p50_vs_select_1": ratio(missed["p50_ms"], baseline_pg["p50_ms"]),
                       "count_free_p50_vs_select_1": ratio(free["p50_ms"], baseline_pg["p50_ms"])},
            "loadavg_after": loadavg()}
