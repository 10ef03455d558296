"""Prometheus metrics of this process: one registry, its metric objects and the helpers that observe them.

Every process (orchestrator and agents alike) records into `REGISTRY`, never into prometheus_client's
global default one, and publishes a snapshot of it next to its heartbeat (`publish`), so that one scrape
of the orchestrator's /metrics sees every process wherever it runs (orchestrator/scrape.py merges them).

Labels name code paths only (endpoint, agent, stream, provider, error class): never a learner, a phone
number or message text, so the scrape carries no personal data and a bounded number of series.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from redis.asyncio import Redis

from charla.core import constants as c

# `_created` timestamps would double the series every process publishes, and merged across processes
# they mean nothing; counter resets are visible anyway. This switch is process-wide, as is REGISTRY.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_WORK = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_REMOTE = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

WEBHOOK_REQUESTS = Counter("charla_webhook_requests_total", "Webhook requests answered, by endpoint and HTTP status.",
                           ["endpoint", "status"], registry=REGISTRY)
WEBHOOK_SECONDS = Histogram("charla_webhook_seconds", "Time to answer a webhook (read, verify, publish), seconds.",
                            ["endpoint"], buckets=_FAST, registry=REGISTRY)
EVENTS_HANDLED = Counter("charla_events_handled_total", "Bus events handled and acknowledged.",
                         ["agent", "stream"], registry=REGISTRY)
EVENTS_FAILED = Counter("charla_events_failed_total", "Handler runs that raised (each attempt counts).",
                        ["agent", "stream"], registry=REGISTRY)
EVENTS_RETRIED = Counter("charla_events_retried_total", "Failed events put back for another delivery.",
                         ["agent", "stream"], registry=REGISTRY)
EVENTS_DEAD_LETTERED = Counter("charla_events_dead_lettered_total", "Events moved to the dead-letter stream.",
                               ["agent", "stream"], registry=REGISTRY)
EVENT_SECONDS = Histogram("charla_event_seconds", "Time one handler run took (failed runs included), seconds.",
                          ["agent", "stream"], buckets=_WORK, registry=REGISTRY)
PROVIDER_SECONDS = Histogram("charla_provider_seconds", "Latency of calls to LLM and WhatsApp providers, seconds "
                             "(failed calls included).", ["provider", "operation"], buckets=_REMOTE,
                             registry=REGISTRY)
PROVIDER_ERRORS = Counter("charla_provider_errors_total", "Provider calls that failed, by error class.",
                          ["provider", "operation", "kind"], registry=REGISTRY)
STT_SECONDS = Histogram("charla_stt_seconds", "Time to transcribe one voice note, seconds.",
                        buckets=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0), registry=REGISTRY)
STT_REAL_TIME_FACTOR = Histogram("charla_stt_real_time_factor", "Transcription time divided by the note's "
                                 "duration (under 1: faster than real time).",
                                 buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0), registry=REGISTRY)


def stream_label(stream: str) -> str:
    """`charla:stream:inbound` -> `inbound`: the label every stream-keyed metric uses."""
    return stream.removeprefix(f"{c.PREFIX}:stream:")


# --- webhooks: observed once per request, with the label children bound once per (endpoint, status)


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...


P = ParamSpec("P")
A = TypeVar("A", bound=_Answer)

_webhook_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}


def observe_webhook(endpoint: str, status: int, seconds: float) -> None:
    """Count one answered webhook and its latency (a dict lookup and two lock-protected adds)."""
    children = _webhook_children.get((endpoint, status))
    if children is None:
        children = (WEBHOOK_REQUESTS.labels(endpoint, str(status)), WEBHOOK_SECONDS.labels(endpoint))
        _webhook_children[(endpoint, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def timed_webhook(endpoint: str, handler: Callable[P, Awaitable[A]]) -> Callable[P, Awaitable[A]]:
    """`handler`, observed by `observe_webhook` (an exception counts as a 500). Wrapped at route registration,
    so only the webhook routes pay for it; FastAPI still sees the handler's own signature (`__wrapped__`)."""

    @functools.wraps(handler)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> A:
        started = time.perf_counter()
        try:
            answer = await handler(*args, **kwargs)
        except Exception:
            observe_webhook(endpoint, 500, time.perf_counter() - started)
            raise
        observe_webhook(endpoint, answer.status_code, time.perf_counter() - started)
        return answer

    return timed


# --- bus events


@dataclass(frozen=True)
class EventMetrics:
    """The event metrics of one worker (agent and stream), label children bound once."""

    handled: Counter
    failed: Counter
    retried: Counter
    dead_lettered: Counter
    seconds: Histogram


def event_metrics(agent: str, stream: str) -> EventMetrics:
    labels = (agent, stream_label(stream))
    return EventMetrics(EVENTS_HANDLED.labels(*labels), EVENTS_FAILED.labels(*labels), EVENTS_RETRIED.labels(*labels),
                        EVENTS_DEAD_LETTERED.labels(*labels), EVENT_SECONDS.labels(*labels))


# --- provider calls and speech to text


def provider_call(provider: str, operation: str) -> ProviderTimer:
    """`with provider_call("groq", "complete"):` times the block into charla_provider_seconds; an exception
    leaving it is counted in charla_provider_errors_total under its class name (e.g. LLMRateLimited)."""
    return ProviderTimer(provider, operation)


class ProviderTimer:
    """A plain context manager: cheaper than a generator-based one, and it never swallows the error."""

    __slots__ = ("_operation", "_provider", "_started")

    def __init__(self, provider: str, operation: str) -> None:
        self._provider, self._operation = provider, operation
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        PROVIDER_SECONDS.labels(self._provider, self._operation).observe(time.perf_counter() - self._started)
        if kind is not None and issubclass(kind, Exception):
            provider_error(self._provider, self._operation, kind.__name__)


def provider_error(provider: str, operation: str, kind: str) -> None:
    """Count a failed provider call (`kind`: an error class name, or e.g. `circuit_open`)."""
    PROVIDER_ERRORS.labels(provider, operation, kind).inc()


def observe_stt(audio_seconds: float, seconds: float) -> None:
    """One transcription: how long it took and its real-time factor (time / audio duration)."""
    STT_SECONDS.observe(seconds)
    if audio_seconds > 0:
        STT_REAL_TIME_FACTOR.observe(seconds / audio_seconds)


# --- snapshots: what a process publishes next to its heartbeat

Family = dict[str, Any]  # {"name", "type", "help", "samples": [[sample name, {label: value}, value], ...]}


def families(registry: CollectorRegistry = REGISTRY) -> list[Family]:
    """The registry's metric families that hold samples, as JSON-ready dicts."""
    return [{"name": m.name, "type": m.type, "help": m.documentation,
             "samples": [[s.name, s.labels, s.value] for s in m.samples]}
            for m in registry.collect() if m.samples]


def snapshot(process: str, instance: str, registry: CollectorRegistry = REGISTRY) -> bytes:
    """The JSON a process publishes: who it is and its families."""
    return json.dumps({"process": process, "instance": instance, "at": time.time(),
                       "families": families(registry)}).encode()


async def publish(redis: Redis, process: str, instance: str, expiry_ms: int,
                  registry: CollectorRegistry = REGISTRY) -> None:
    """Write this process's snapshot (expiring like its heartbeat) and list it in the index readers use, so
    a scrape never SCANs the keyspace."""
    key = c.METRICS_KEY.format(agent=process, consumer=instance)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(key, snapshot(process, instance, registry), px=expiry_ms)
        pipe.zadd(c.METRICS_INDEX_KEY, {key: time.time() * 1000 + expiry_ms})
        await pipe.execute()


async def withdraw(redis: Redis, process: str, instance: str) -> None:
    """Remove this process's snapshot (a graceful stop)."""
    key = c.METRICS_KEY.format(agent=process, consumer=instance)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(key)
        pipe.zrem(c.METRICS_INDEX_KEY, key)
        await pipe.execute()


def merged(snapshots: Iterable[dict[str, Any]]) -> list[Metric]:
    """One family per metric name across snapshots, each sample labelled with its `process` and `instance`.
    A family whose type disagrees with the first one seen under its name (mixed versions) is left out."""
    out: dict[str, Metric] = {}
    for snap in snapshots:
        where = {"process": str(snap.get("process", "")), "instance": str(snap.get("instance", ""))}
        for family in snap.get("families", []):
            metric = out.setdefault(family["name"], Metric(family["name"], family["help"], family["type"]))
            if metric.type != family["type"]:
                continue
            for name, labels, value in family["samples"]:
                metric.add_sample(name, {**labels, **where}, float(value))
    return list(out.values())
