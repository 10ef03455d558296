"""Benchmark S: practice dispatch with 100,000 learners scheduled.

Learners, profiles and schedules are loaded with COPY; every schedule falls due within the same minute
(the worst case: everyone chose 19:00 in one timezone), all inside their 24-hour window. The scheduler
(`PracticeScheduler.tick`, a controllable clock just past the minute) claims, composes and hands the
prompts to the outbox until none is left. Figures: prompts dispatched per second, and the delay from each
prompt's due time to its publish, measured from the moment the minute ended. Each learner's weekly report has
gone out this week already (a normal slot: the report's own cost is benchmark R, `--only report`). Baseline in the
same run: raw `XADD` of the same number of entries, pipelined.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from redis.asyncio import Redis

from agents.scheduler import PracticeScheduler
from bench.load import loadavg, progress, ratio
from bench.services import Services
from charla.core import constants as c
from charla.core.runtime import open_resources
from charla.core.settings import Settings
from charla.store.profile import week_of

DUE = datetime(2030, 6, 3, 17, 0, tzinfo=UTC)


async def _load(db: str, learners: int) -> None:
    progress(f"scheduler: loading {learners} learners with a 19:00 Europe/Madrid schedule")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        ids = [uuid.uuid4() for _ in range(learners)]
        async with conn.cursor().copy("COPY learners (id, wa_id, last_inbound_at) FROM STDIN") as copy:
            for n, learner_id in enumerate(ids):
                await copy.write_row((learner_id, f"3490{n:07d}", DUE - timedelta(hours=2)))
        week = orjson.dumps({"report_week": week_of(DUE, None)}).decode()
        async with conn.cursor().copy("COPY profiles (learner_id, data) FROM STDIN") as copy:
            for learner_id in ids:
                await copy.write_row((learner_id, week))
        async with conn.cursor().copy(
                "COPY schedules (learner_id, rule, timezone, local_time, next_run_at) FROM STDIN") as copy:
            for n, learner_id in enumerate(ids):
                await copy.write_row((learner_id, "19:00 all", "Europe/Madrid", "19:00",
                                      DUE + timedelta(milliseconds=n * 60_000 // learners)))
        await conn.execute("ANALYZE")


async def _baseline(redis: Redis, n: int) -> float:
    started = time.perf_counter()
    for first in range(0, n, 1000):
        pipe = redis.pipeline(transaction=False)
        for i in range(first, min(n, first + 1000)):
            pipe.xadd("bench:scheduler:baseline", {"e": f"{i}"})
        await pipe.execute()
    elapsed = time.perf_counter() - started
    await redis.delete("bench:scheduler:baseline")
    return n / elapsed


async def run(services: Services, learners: int = 100_000) -> dict[str, object]:
    before = loadavg()
    await _load(services.database_url, learners)
    settings = Settings(DATABASE_URL=services.database_url, REDIS_URL=services.redis_url,
                        CHARLA_BUS_MAX_BACKLOG=10**7)
    async with open_resources(settings, pool_size=6) as res:
        clock_now = DUE + timedelta(minutes=1)
        scheduler = PracticeScheduler(res, lambda: clock_now)
        progress(f"scheduler: dispatching {learners} due prompts")
        started = time.perf_counter()
        sent, delays = 0, []
        while True:
            done = await scheduler.tick()
            if not done:
                break
            sent += done
            delays.append((time.perf_counter() - started, sent))
        elapsed = time.perf_counter() - started
        baseline = await _baseline(res.redis, learners)
        published = int(await res.redis.xlen(c.STREAM_OUTBOX))
    half = next(t for t, n in delays if n >= sent // 2) if delays else None
    return {"what": (__doc__ or "").strip().split("\n\n", 1)[-1], "learners": learners, "dispatched": sent,
            "published": published, "seconds": round(elapsed, 2), "prompts_per_s": round(sent / elapsed, 1),
            "delay_after_due_minute_s": {"p50_approx": round(half, 2) if half else None, "last": round(elapsed, 2)},
            "baseline_pipelined_xadd_per_s": round(baseline, 1),
            "prompts_per_s_vs_xadd": ratio(sent / elapsed, baseline), "loadavg_before": before,
            "loadavg_after": loadavg()}
