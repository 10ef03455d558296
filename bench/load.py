"""Load generation (open-loop schedule, closed loop) and latency statistics shared by the benchmarks."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

Send = Callable[[int], Awaitable[int]]


def progress(message: str) -> None:
    """One progress line on stderr (stdout carries only the JSON result)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (Linux /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine, all cores together (Linux /proc/stat, idle and iowait excluded)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuMeter:
    """CPU used by named processes and the whole machine from construction on, as shares of one core
    (1.0 = one core busy; the machine can reach os.cpu_count())."""

    pids: dict[str, int]
    started: float = field(default_factory=time.perf_counter)
    before: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {"whole machine": machine_cpu_seconds(), **{name: cpu_seconds(pid) for name, pid in self.pids.items()}}

    def __post_init__(self) -> None:
        self.before.update(self._now())

    def seconds(self) -> dict[str, float]:
        """CPU seconds used since construction, per process (and the whole machine)."""
        return {name: cpu - self.before[name] for name, cpu in self._now().items()}

    def shares(self) -> dict[str, float]:
        """CPU seconds used since construction divided by the wall seconds elapsed, per process."""
        wall = time.perf_counter() - self.started
        return {name: round((cpu - self.before[name]) / wall, 2) for name, cpu in self._now().items()}


def saturated(shares: dict[str, float], threshold: float = 0.9) -> list[str]:
    """Processes that kept a core at least `threshold` busy: single-threaded, they set the ceiling."""
    return [name for name, share in shares.items() if name != "whole machine" and share >= threshold]


@dataclass(frozen=True)
class Sample:
    """One request: when it was due, when it started and finished (perf_counter s), its HTTP status (0: error)."""

    index: int
    scheduled: float
    started: float
    finished: float
    status: int


async def _timed(send: Send, index: int, scheduled: float) -> Sample:
    started = time.perf_counter()
    try:
        status = await send(index)
    except (httpx.HTTPError, OSError):  # OSError: bench.rawhttp's failures
        status = 0
    return Sample(index, scheduled, started, time.perf_counter(), status)


async def open_loop(send: Send, *, rate: float, total: int) -> list[Sample]:
    """Start request i at t0 + i/rate whatever earlier requests are doing; wait for all of them."""
    t0 = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[Sample]] = []
    for index in range(total):
        scheduled = t0 + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_timed(send, index, scheduled)))
    return list(await asyncio.gather(*tasks))


async def closed_loop(send: Send, *, concurrency: int, seconds: float, limit: int = sys.maxsize) -> list[Sample]:
    """`concurrency` clients each sending the next request as soon as the previous one is answered, for
    `seconds` or until `limit` requests (indices 0 … limit-1) were started."""
    deadline = time.perf_counter() + seconds
    counter = iter(range(limit))

    async def client() -> list[Sample]:
        samples: list[Sample] = []
        while (now := time.perf_counter()) < deadline and (index := next(counter, None)) is not None:
            samples.append(await _timed(send, index, now))
        return samples

    per_client = await asyncio.gather(*(client() for _ in range(concurrency)))
    return [sample for samples in per_client for sample in samples]


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of durations given in seconds, in milliseconds (nearest rank)."""
    if not seconds:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(seconds)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 2)

    return {"p50_ms": rank(0.50), "p90_ms": rank(0.90), "p99_ms": rank(0.99), "max_ms": round(ordered[-1] * 1000, 2)}


def achieved_per_s(samples: Sequence[Sample]) -> float:
    """Successful requests per second, from the first scheduled start to the last answer."""
    span = max(s.finished for s in samples) - min(s.scheduled for s in samples) if samples else 0.0
    return round(sum(1 for s in samples if s.status == 200) / span, 1) if span > 0 else 0.0


def http_summary(samples: Sequence[Sample], *, scheduled: bool = True) -> dict[str, object]:
    """Request count, errors, achieved rate and latency (from the scheduled start) of HTTP samples; with
    `scheduled` (open loop) also how late the generator started requests."""
    ok = [s for s in samples if s.status == 200]
    summary: dict[str, object] = {"requests": len(samples), "ok": len(ok), "errors": len(samples) - len(ok),
                                  "achieved_per_s": achieved_per_s(samples),
                                  "latency": percentiles_ms([s.finished - s.scheduled for s in ok])}
    if scheduled:
        summary["schedule_lag"] = percentiles_ms([s.started - s.scheduled for s in samples])
    return summary


def ratio(value: object, baseline: object) -> float | None:
    """value / baseline rounded, or None when either is missing or the baseline is zero."""
    if isinstance(value, int | float) and isinstance(baseline, int | float) and baseline:
        return round(value / baseline, 3)
    return None
