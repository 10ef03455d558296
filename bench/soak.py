"""The soak: every Charla process (orchestrator and all six agents) under a steady stream of text and voice notes
for many minutes, with the resident memory (RSS) of each process, redis-server and PostgreSQL sampled. After
a warm-up the memory may not keep growing: the growth from the first samples after the warm-up to the last
ones must stay under a bound; and, as in the chaos run, every message is answered exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from redis.asyncio import Redis

from bench import chaos
from bench.load import loadavg, percentiles_ms, progress
from bench.services import Services, prepare
from bench.stack import pid
from tests.support.voice_kit import note, speak

DATA_STORES = ("redis-server", "postgresql")
EVERY_AGENT = ("conversation", "memory", "voice", "sender", "payments", "scheduler")


@dataclass(frozen=True)
class SoakOptions:
    """How long, how fast, and how much growth is tolerated."""

    minutes: float = 30.0
    rate: float = 4.0  # messages per second, steady
    learners: int = 200
    voice_every: int = 10  # every n-th message is a voice note
    sample_s: float = 15.0
    warmup_share: float = 0.2  # the first part of the run, where caches and pools fill, is not judged
    bound_mb: float = 25.0  # allowed growth per process after the warm-up (or bound_share, if larger)
    bound_share: float = 0.10
    drain_s: float = 120.0


@dataclass
class Samples:
    """RSS in MB per process name, one list entry per sample, and when each sample was taken."""

    at_s: list[float] = field(default_factory=list)
    rss_mb: dict[str, list[float]] = field(default_factory=dict)

    def add(self, elapsed: float, values: dict[str, float]) -> None:
        self.at_s.append(round(elapsed, 1))
        for name, value in values.items():
            self.rss_mb.setdefault(name, []).append(round(value, 1))


def rss_mb(pids: dict[str, int]) -> dict[str, float]:
    """Memory of each process and its children (PostgreSQL is a family of backends), in MB: the proportional
    set size, so pages the backends share (shared buffers) are counted once, not once per backend."""
    found: dict[str, float] = {}
    for name, number in pids.items():
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(number)
            found[name] = sum(_pss(p) for p in [process, *process.children(recursive=True)]) / 2**20
    return found


def _pss(process: psutil.Process) -> int:
    """The process's proportional set size in bytes; 0 if it has just exited (a backend closing)."""
    try:
        return int(process.memory_full_info().pss)
    except psutil.Error:
        return 0


def postgres_pid(services: Services) -> int | None:
    """The postmaster's pid, from the first line of postmaster.pid."""
    if services.postgres is None:
        return None
    lock = services.postgres.root / "data" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError):
        return int(lock.read_text().split()[0])
    return None


def growth(samples: Samples, options: SoakOptions) -> dict[str, dict[str, float]]:
    """Per process: RSS at the end of the warm-up and at the end (median of three samples each), the
    growth between them, the bound and the peak."""
    skip = max(1, int(len(samples.at_s) * options.warmup_share))
    judged: dict[str, dict[str, float]] = {}
    for name, values in samples.rss_mb.items():
        after = values[skip:] if len(values) > skip + 3 else values
        start, end = statistics.median(after[:3]), statistics.median(after[-3:])
        judged[name] = {"after_warmup_mb": start, "end_mb": end, "growth_mb": round(end - start, 1),
                        "bound_mb": round(max(options.bound_mb, start * options.bound_share), 1),
                        "peak_mb": max(values)}
    return judged


async def sample_until(stop: asyncio.Event, pids: dict[str, int], samples: Samples, every_s: float,
                       started: float) -> None:
    """Sample RSS every `every_s` until `stop` is set."""
    while not stop.is_set():
        values = rss_mb(pids)
        samples.add(time.perf_counter() - started, values)
        progress("soak: " + ", ".join(f"{name} {mb:.0f}" for name, mb in values.items()) + " MB")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def steady(client: httpx.AsyncClient, graph: chaos.StampedGraph, ledger: chaos.Ledger, notes: list[bytes],
                 options: SoakOptions) -> int:
    """Messages at `options.rate` per second for `options.minutes`, learners in turn (so one learner writes
    every learners/rate seconds); returns how many were offered."""
    total = int(options.minutes * 60 * options.rate)
    t0 = time.perf_counter()
    tasks: list[asyncio.Task[bool]] = []
    for index in range(total):
        delay = t0 + index / options.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        i, n = index % options.learners, index // options.learners
        voice = options.voice_every > 0 and index % options.voice_every == options.voice_every - 1
        tasks.append(asyncio.create_task(chaos.send_message(client, graph, ledger, notes, i, n, voice=voice)))
    await asyncio.gather(*tasks)
    return total


async def run(services: Services, options: SoakOptions) -> dict[str, Any]:
    """Run the soak; the memory figures, the exactly-once audit and the violations."""
    await prepare(services)
    notes = [note(speak(phrase, "en")) for phrase in chaos.PHRASES]
    ledger, samples = chaos.Ledger(), Samples()
    started_load = loadavg()
    async with chaos.chaos_stack(services, 10**6, EVERY_AGENT) as (graph, procs, url):
        pids = {name: pid(proc) for name, proc in procs.items()}
        if services.redis_server is not None and (redis_pid := services.redis_server.pid) is not None:
            pids["redis-server"] = redis_pid
        if (pg := postgres_pid(services)) is not None:
            pids["postgresql"] = pg
        redis = Redis.from_url(services.redis_url)
        stop = asyncio.Event()
        started = time.perf_counter()
        sampler = asyncio.create_task(sample_until(stop, pids, samples, options.sample_s, started))
        try:
            progress(f"soak: {options.rate:g} messages/s for {options.minutes:g} minutes")
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                offered = await steady(client, graph, ledger, notes, options)
            drained = await chaos.within(lambda: chaos.settled(redis, services.database_url, len(ledger.accepted)),
                                           options.drain_s)
            stop.set()
            await sampler
            await chaos.within(lambda: chaos.graph_quiet(graph), 10)
            result: dict[str, Any] = {
                "options": options.__dict__, "loadavg_at_start": started_load, "loadavg_at_end": loadavg(),
                "seconds": round(time.perf_counter() - started, 1), "messages_sent": offered,
                "accepted": len(ledger.accepted), "voice_notes_accepted": sum(ledger.voices.values()),
                "webhook_latency": percentiles_ms(ledger.webhook_s),
                "redis_used_memory_mb": round(int((await redis.info("memory"))["used_memory"]) / 2**20, 1),
                "rss": growth(samples, options), "samples": {"at_s": samples.at_s, "rss_mb": samples.rss_mb},
                "audit": await chaos.audit(graph, ledger, redis, services.database_url)}
        finally:
            stop.set()
            await redis.aclose()
    result["violations"] = chaos.violations(result, ledger, drained) + memory_violations(result["rss"])
    result["data_kb_per_message"] = {name: round(result["rss"][name]["growth_mb"] * 1024 / max(1, offered), 2)
                                     for name in DATA_STORES if name in result["rss"]}
    return result


def memory_violations(rss: dict[str, dict[str, float]]) -> list[str]:
    """Charla's processes whose memory grew past the bound after the warm-up. Redis and PostgreSQL are not
    judged: they hold data that grows with traffic by design (dedupe keys for 7 days, voice notes for 24
    hours, message rows); the report gives their growth per message instead."""
    return [f"{name} grew {figures['growth_mb']} MB after the warm-up (bound {figures['bound_mb']} MB)"
            for name, figures in rss.items() if name not in DATA_STORES and figures["growth_mb"] > figures["bound_mb"]]
