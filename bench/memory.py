"""Benchmark M: learner memory.

- Recall: 100 learners × 1,000 memories (random unit vectors: the exact per-learner scan costs the same
  whatever the text), a random learner's top-5 per query. Baseline in the same run: `SELECT 1`.
- Profile updates: the memory agent's counting step (one turn's corrections and words into the JSONB
  profile under a row lock), sequential and 8 at once. Baseline: a one-row UPDATE of a plain column.
- Agent lag: `charla agent memory` in its own process behind turn events published at 50 turns/s for
  20 learners (real turn rows, so every 10 messages of a learner it also asks a fake Claude for a summary
  and embeds it with the real e5 model); the lag is how far the group is behind, sampled every 100 ms.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from redis.asyncio import Redis

from bench.load import loadavg, percentiles_ms, progress, ratio
from bench.services import Services
from charla.cli.services import free_port
from charla.core import constants as c
from charla.core.bus import Bus
from charla.core.db import open_pool
from charla.core.events import Identity, TurnEvent
from charla.store import learners, memories, profile
from tests.support.fake_llm import llm_env, serve_fake_llm
from tests.support.stack import Proc, stack_env

CORRECTION = {"original": "Yo es cansado", "corrected": "Estoy cansado", "category": "ser_estar"}


@dataclass(frozen=True)
class MemoryOptions:
    learners: int = 100
    per_learner: int = 1000
    queries: int = 500
    updates: int = 2000
    rate: float = 50.0
    seconds: float = 10.0
    lag_learners: int = 20  # few enough that each passes CHARLA_MEMORY_EVERY messages (summaries happen)


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = rng.standard_normal((n, memories.DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)  # type: ignore[no-any-return]


async def _learners(db: str, n: int, prefix: str) -> list[uuid.UUID]:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        return [await learners.upsert(conn, Identity(console=f"{prefix}{i}")) for i in range(n)]


async def recall(db: str, options: MemoryOptions) -> dict[str, object]:
    rng = np.random.default_rng(5)
    ids = await _learners(db, options.learners, "recall")
    progress(f"memory: loading {options.learners} × {options.per_learner} memories")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        async with conn.cursor().copy("COPY memories (learner_id, kind, content, embedding) FROM STDIN") as copy:
            for learner_id in ids:
                for n, vector in enumerate(_vectors(rng, options.per_learner)):
                    await copy.write_row((learner_id, "moment", f"memory {n}", memories.literal(vector)))
        await conn.execute("ANALYZE memories")
        progress(f"memory: {options.queries} recall queries (top 5, one learner each)")
        timings, baseline = [], []
        for query in _vectors(rng, options.queries):
            started = time.perf_counter()
            found = await memories.search(conn, random.choice(ids), query, 5)
            timings.append(time.perf_counter() - started)
            assert len(found) == 5
            started = time.perf_counter()
            await conn.execute("SELECT 1")
            baseline.append(time.perf_counter() - started)
    got, base = percentiles_ms(timings), percentiles_ms(baseline)
    return {"rows": options.learners * options.per_learner, "top_k": 5, "query": got, "baseline_select_1": base,
            "p50_vs_baseline": ratio(got["p50_ms"], base["p50_ms"])}


async def updates(db: str, options: MemoryOptions) -> dict[str, object]:
    from agents.memory import apply

    ids = await _learners(db, 50, "update")
    pool = await open_pool(db, max_size=8)
    turn_ids = iter(range(1, 10**9))

    async def one(learner_id: uuid.UUID) -> None:
        event = TurnEvent(learner="x", turn_id=next(turn_ids), learner_id=str(learner_id), message_ids=["m"],
                          text="Yo es cansado y tengo hambre", reply="", corrections=[CORRECTION],
                          vocabulary=[{"word": f"w{random.randrange(300)}"}], llm="bench")
        async with pool.connection() as conn, conn.transaction():
            await profile.update(conn, learner_id, lambda p: apply(p, event))

    async def plain(learner_id: uuid.UUID) -> None:
        async with pool.connection() as conn:
            await conn.execute("UPDATE learners SET last_inbound_at = now() WHERE id = %s", (learner_id,))

    result: dict[str, object] = {}
    try:
        for name, work in (("profile_update", one), ("baseline_plain_update", plain)):
            for concurrency in (1, 8):
                progress(f"memory: {options.updates} × {name}, {concurrency} at once")
                started = time.perf_counter()
                await _run_concurrently(work, ids, options.updates, concurrency)
                result[f"{name}_per_s_x{concurrency}"] = round(options.updates / (time.perf_counter() - started), 1)
    finally:
        await pool.close()
    result["profile_vs_baseline_x8"] = ratio(result["profile_update_per_s_x8"],
                                             result["baseline_plain_update_per_s_x8"])
    return result


async def _run_concurrently(work: Any, ids: list[uuid.UUID], total: int, concurrency: int) -> None:
    queue = iter(range(total))

    async def worker() -> None:
        for n in queue:
            await work(ids[n % len(ids)])

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _turn_rows(db: str, ids: list[uuid.UUID], count: int) -> list[TurnEvent]:
    """Real message and turn rows (what the conversation agent records), and their events."""
    events = []
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        for n in range(count):
            learner_id = ids[n % len(ids)]
            wamid = f"wamid.lag{n}"
            row = await (await conn.execute(
                """INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body, status)
                   VALUES (%s, 'in', 'console', %s, 'text', 'Yo es cansado hoy', 'answered') RETURNING id""",
                (learner_id, wamid))).fetchone()
            assert row is not None
            turn = await (await conn.execute(
                "INSERT INTO turns (learner_id, reply_to, inbound_ids, provider) VALUES (%s, %s, %s, 'bench') "
                "RETURNING id", (learner_id, row[0], [row[0]]))).fetchone()
            assert turn is not None
            events.append(TurnEvent(learner=f"console:lag{n % len(ids)}", turn_id=int(str(turn[0])),
                                    learner_id=str(learner_id), message_ids=[wamid], text="Yo es cansado hoy",
                                    reply="Estoy cansado", corrections=[CORRECTION], llm="bench"))
    return events


async def agent_lag(services: Services, options: MemoryOptions) -> dict[str, object]:
    ids = await _learners(services.database_url, options.lag_learners, "lag")
    total = int(options.rate * options.seconds)
    events = await _turn_rows(services.database_url, ids, total)
    redis = Redis.from_url(services.redis_url)
    bus = Bus(redis)
    await bus.ensure_group(c.STREAM_TURNS, "memory")
    async with serve_fake_llm() as (fake, llm_url):
        env = stack_env(db=services.database_url, redis_url=services.redis_url, graph_url="http://127.0.0.1:9",
                        port=free_port(), home=str(services.root / "home"), CHARLA_CONSUMER="memory-bench",
                        **llm_env(llm_url, "anthropic"))
        agent = Proc(["agent", "memory"], env)
        await agent.start()
        try:
            progress(f"memory: {total} turn events at {options.rate:g}/s to `charla agent memory`")
            behind, drained_after = await _publish_and_watch(redis, bus, events, options.rate)
        finally:
            await agent.stop()
            await redis.aclose()
        summaries = fake.calls("anthropic")
    return {"turns": total, "offered_per_s": options.rate, "learners": options.lag_learners,
            "summaries_asked": summaries, "max_entries_behind": max(behind),
            "max_seconds_behind": round(max(behind) / options.rate, 2),
            "p50_entries_behind": sorted(behind)[len(behind) // 2],
            "drained_after_last_publish_s": drained_after}


async def _publish_and_watch(redis: Redis, bus: Bus, events: list[TurnEvent], rate: float) -> tuple[list[int], float]:
    behind: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            behind.append(await _behind(redis))
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    started = time.perf_counter()
    for n, event in enumerate(events):
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        await bus.publish(c.STREAM_TURNS, event)
    last = time.perf_counter()
    while await _behind(redis):
        if time.perf_counter() - last > 120:
            break
        await asyncio.sleep(0.05)
    drained_after = round(time.perf_counter() - last, 3)
    done.set()
    await watcher
    return behind or [0], drained_after


async def _behind(redis: Redis) -> int:
    group = next(g for g in await redis.xinfo_groups(c.STREAM_TURNS) if g["name"] in (b"memory", "memory"))
    return int(group.get("lag") or 0) + int(group["pending"])


async def run(services: Services, options: MemoryOptions) -> dict[str, object]:
    before = loadavg()
    result: dict[str, object] = {"what": (__doc__ or "").strip().split("\n\n", 1)[-1], "loadavg_before": before}
    result["recall"] = await recall(services.database_url, options)
    result["updates"] = await updates(services.database_url, options)
    result["agent_lag"] = await agent_lag(services, options)
    result["loadavg_after"] = loadavg()
    return result
