"""Benchmark B: signed webhooks → orchestrator → conversation agent → outbox → sender → fake Graph API.

Webhooks are offered open-loop (request i starts at t0 + i/rate whatever happened to earlier ones), from
many learners. Latencies count from the scheduled start, so a late generator cannot hide queueing. The
baseline, in the same run, is a bare FastAPI endpoint in its own uvicorn process at the same offered rate
and at its closed-loop maximum.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from bench.load import (
    CpuMeter,
    Sample,
    Send,
    achieved_per_s,
    closed_loop,
    http_summary,
    loadavg,
    open_loop,
    percentiles_ms,
    progress,
    ratio,
    saturated,
)
from bench.services import Services, UsageMeter
from bench.stack import BUS_ENV, TimedGraph, bare_server, charla_stack, drained, timed_graph
from charla.core import constants as c
from tests.support.helpers import eventually
from tests.support.payloads import sign, text_webhook

HEADERS = {"content-type": "application/json"}
LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=512)


@dataclass(frozen=True)
class WebhookOptions:
    """Load shape of the webhook benchmark."""

    rate: float = 200.0
    seconds: float = 10.0
    learners: int = 500
    warmup: int = 50
    drain_s: float = 60.0
    closed_loop_s: float = 0.75  # per client count
    closed_loop_clients: tuple[int, ...] = (1, 2, 4, 8)
    tag: str = ""  # keeps message ids of runs against the same database apart

    @property
    def total(self) -> int:
        return int(self.rate * self.seconds)


@dataclass(frozen=True)
class Webhook:
    wamid: str
    body: bytes
    signature: str
    learner: str = ""  # who sent it ("": unknown, every unanswered message counts as lost)


def webhooks(count: int, learners: int, prefix: str) -> list[Webhook]:
    """`count` signed text webhooks, learner i % learners, wamids `wamid.<prefix><i>`."""
    made = []
    for i in range(count):
        wamid = f"wamid.{prefix}{i:07d}"
        body = text_webhook(f"3461{i % learners:07d}", wamid, f"Mensaje {i // learners} de mi práctica diaria")
        made.append(Webhook(wamid, body, sign(body), f"3461{i % learners:07d}"))
    return made


def baseline_body() -> bytes:
    """A 2 KB JSON document for the baseline endpoint."""
    return json.dumps({"object": "bench", "padding": "x" * 2000}).encode()


async def post_webhooks(client: httpx.AsyncClient, hooks: Sequence[Webhook], rate: float) -> list[Sample]:
    """Offer `hooks` open-loop at `rate` per second."""
    async def send(i: int) -> int:
        response = await client.post("/webhooks/whatsapp", content=hooks[i].body,
                                     headers={**HEADERS, "x-hub-signature-256": hooks[i].signature})
        return response.status_code

    return await open_loop(send, rate=rate, total=len(hooks))


async def warm_up(client: httpx.AsyncClient, fake: TimedGraph, options: WebhookOptions) -> None:
    """Send a few webhooks and wait for their replies (connections, pools and caches warm)."""
    hooks = webhooks(options.warmup, options.learners, f"W{options.tag}")
    fake.expect(h.wamid for h in hooks)
    await post_webhooks(client, hooks, options.rate)
    async with asyncio.timeout(60):
        await fake.all_arrived.wait()


def replies(fake: TimedGraph, hooks: Sequence[Webhook], samples: Sequence[Sample]) -> dict[str, object]:
    """Replies/s, end-to-end latency, lost and duplicated replies of a measured run. A message with no reply
    of its own that a later reply to the same learner came after was answered in that burst (a turn answers
    every waiting message and quotes the newest): not lost."""
    arrivals = [fake.arrivals.get(h.wamid, []) for h in hooks]
    end_to_end = [times[0] - s.scheduled for times, s in zip(arrivals, samples, strict=True) if times]
    t0 = min(s.scheduled for s in samples)
    last = max((times[0] for times in arrivals if times), default=t0)
    replied = sum(1 for times in arrivals if times)
    latest: dict[str, float] = {}  # each learner's last reply
    for hook, times in zip(hooks, arrivals, strict=True):
        if times and hook.learner:
            latest[hook.learner] = max(latest.get(hook.learner, times[0]), times[0])
    in_a_burst = sum(1 for hook, times, sample in zip(hooks, arrivals, samples, strict=True)
                     if not times and hook.learner and latest.get(hook.learner, 0.0) > sample.scheduled)
    return {"replied": replied, "answered_in_a_burst": in_a_burst, "lost": len(hooks) - replied - in_a_burst,
            "duplicated": sum(len(times) - 1 for times in arrivals if len(times) > 1),
            "replies_per_s": round(replied / (last - t0), 1) if last > t0 else None,
            "last_reply_after_last_request_s": round(last - max(s.finished for s in samples), 3),
            "end_to_end": percentiles_ms(end_to_end)}


async def offer(client: httpx.AsyncClient, fake: TimedGraph, hooks: Sequence[Webhook],
                options: WebhookOptions) -> list[Sample]:
    """Offer the measured load, then wait (up to the drain timeout) for every reply."""
    fake.expect(h.wamid for h in hooks)
    progress(f"webhook: offering {len(hooks)} webhooks at {options.rate:g}/s")
    samples = await post_webhooks(client, hooks, options.rate)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(options.drain_s):
            await fake.all_arrived.wait()
    return samples


async def measure_charla(services: Services, options: WebhookOptions,
                         busy: Callable[[Redis], Awaitable[dict[str, object]]] | None = None) -> dict[str, object]:
    """Run the stack, warm it up, offer the load and collect webhook and end-to-end figures. With `busy`,
    the voice agent runs too and `busy` fills its queue before the load (its result is reported)."""
    redis = Redis.from_url(services.redis_url)
    hooks = webhooks(options.total, options.learners, f"B{options.tag}")
    try:
        await redis.flushdb()
        async with timed_graph() as (fake, graph_url), \
                charla_stack(services, graph_url, redis, voice=busy is not None) as stack, \
                httpx.AsyncClient(base_url=stack.url, timeout=30, limits=LIMITS) as client:
            progress(f"webhook: warm-up, {options.warmup} messages")
            await warm_up(client, fake, options)
            background = await busy(redis) if busy is not None else {}
            meter = await UsageMeter.begin(redis, {"benchmark (load generator, fake Graph)": os.getpid(),
                                                   **stack.pids})
            samples = await offer(client, fake, hooks, options)
            usage = await meter.end(len(hooks))
            with contextlib.suppress(AssertionError):  # not drained in time: the figures below show it
                await eventually(lambda: drained(redis), 15, "agents drained")
            dead = {s: int(await redis.xlen(s + c.DEAD_SUFFIX)) for s in (c.STREAM_INBOUND, c.STREAM_OUTBOX)}
        return {"webhook_http": http_summary(samples), **replies(fake, hooks, samples), "dead_letters": dead, **usage,
                **background}
    finally:
        await redis.flushdb()
        await redis.aclose()


async def closed_loop_sweep(send: Send, pids: dict[str, int], options: WebhookOptions) -> dict[str, object]:
    """Closed-loop throughput at each client count; the best one is the baseline's maximum."""
    points: list[dict[str, object]] = []
    best = 0.0
    for clients in options.closed_loop_clients:
        progress(f"webhook baseline: closed loop, {clients} client(s), {options.closed_loop_s:g}s")
        meter = CpuMeter(pids)
        samples = await closed_loop(send, concurrency=clients, seconds=options.closed_loop_s)
        shares = meter.shares()
        points.append({"clients": clients, **http_summary(samples, scheduled=False),
                       "cpu_share_of_one_core": shares, "saturated_processes": saturated(shares)})
        best = max(best, achieved_per_s(samples))
    return {"seconds_per_point": options.closed_loop_s, "max_per_s": best, "points": points}


async def measure_baseline(options: WebhookOptions) -> dict[str, object]:
    """The bare endpoint at the same offered rate, then at its closed-loop maximum."""
    body = baseline_body()
    async with bare_server() as server, httpx.AsyncClient(base_url=server.url, timeout=30, limits=LIMITS) as client:

        async def send(_: int) -> int:
            return (await client.post("/echo", content=body, headers=HEADERS)).status_code

        pids = {"benchmark (load generator)": os.getpid(), **server.pids}
        await closed_loop(send, concurrency=2, seconds=0.5)  # warm-up
        progress(f"webhook baseline: {options.total} requests at {options.rate:g}/s")
        meter = CpuMeter(pids)
        same_rate = {**http_summary(await open_loop(send, rate=options.rate, total=options.total)),
                     "cpu_share_of_one_core": meter.shares()}
        maximum = await closed_loop_sweep(send, pids, options)
    return {"what": "bare FastAPI POST /echo parsing a JSON body, uvicorn uvloop+httptools, access log off, "
                    "own process", "body_bytes": len(body), "same_offered_rate": same_rate, "closed_loop": maximum}


def comparison(charla: dict[str, object], baseline: dict[str, object], rate: float) -> dict[str, float | None]:
    """Ratios of Charla's figures to the baseline's (and of achieved to offered rate)."""
    def pick(result: object, *path: str) -> object:
        for key in path:
            result = result.get(key) if isinstance(result, dict) else None
        return result

    same, webhook = baseline["same_offered_rate"], charla["webhook_http"]
    return {"webhook_p50_vs_baseline_p50": ratio(pick(webhook, "latency", "p50_ms"), pick(same, "latency", "p50_ms")),
            "webhook_p99_vs_baseline_p99": ratio(pick(webhook, "latency", "p99_ms"), pick(same, "latency", "p99_ms")),
            "replies_per_s_vs_offered": ratio(charla["replies_per_s"], rate),
            "replies_per_s_vs_baseline_max": ratio(charla["replies_per_s"],
                                                   pick(baseline, "closed_loop", "max_per_s"))}


async def run(services: Services, options: WebhookOptions) -> dict[str, object]:
    """The whole webhook benchmark; returns its JSON-ready result."""
    before = loadavg()
    charla = await measure_charla(services, options)
    between = loadavg()
    baseline = await measure_baseline(options)
    return {"loadavg_before": before, "loadavg_after_charla": between, "loadavg_after": loadavg(),
            "offered_rate_per_s": options.rate, "seconds": options.seconds, "messages": options.total,
            "learners": options.learners, "warmup_messages": options.warmup, "drain_timeout_s": options.drain_s,
            "latency_origin": "scheduled send time t0 + i/rate",
            "processes": "charla serve, charla agent conversation, charla agent sender (one each); "
                         "fake Graph API and load generator in the benchmark process",
            "stack_env": BUS_ENV, "webhook_body_bytes": len(webhooks(1, 1, "X")[0].body),
            "charla": charla, "baseline": baseline, "ratios": comparison(charla, baseline, options.rate)}
