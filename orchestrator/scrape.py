"""GET /metrics: every Charla process's metrics and the bus's state, in Prometheus text format.

One scrape shows the whole deployment: this process's own registry (read live), the snapshot every other
process publishes next to its heartbeat (charla.core.metrics.publish; agents may run on other machines and share
only Redis), each sample labelled `process` (agent) and `instance` (consumer), same-named families merged
into one; and gauges computed now from Redis: per stream its length and dead letters, per consumer group
its pending entries, lag and consumers, and live processes per agent. The snapshots carry an `instance`
label of their own, so scrape with `honor_labels: true` (as for a Pushgateway or federation).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import SecretStr
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core import metrics
from charla.core.bus import Bus, StreamStats
from charla.core.redis_client import ERRORS, get_each
from charla.core.runtime import Resources, consumer_name

log = logging.getLogger(__name__)

PROCESS = "orchestrator"
SKEW_MS = 60_000  # index entries are pruned this long after their expiry: clocks of other machines may lag


class Families:
    """A collector of families gathered beforehand (a scrape reads Redis asynchronously; collect() is sync)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


async def snapshots(redis: Redis) -> list[dict[str, Any]]:
    """The snapshots of every live process (expired or unreadable ones skipped)."""
    now_ms = time.time() * 1000
    await redis.zremrangebyscore(c.METRICS_INDEX_KEY, "-inf", now_ms - SKEW_MS)
    keys: Any = await redis.zrange(c.METRICS_INDEX_KEY, 0, -1)
    found: list[dict[str, Any]] = []
    for raw in await get_each(redis, keys):  # one key per process, each in a slot of its own on a cluster
        if raw is None:  # expired since the index was read
            continue
        try:
            found.append(json.loads(raw))
        except ValueError:
            log.warning("unreadable metrics snapshot skipped")
    return found


def stream_families(stats: Iterable[StreamStats]) -> list[Metric]:
    """Per stream: length and dead letters; per consumer group: pending, lag and consumers."""
    length = GaugeMetricFamily("charla_stream_length", "Entries in the stream (acknowledged history included).",
                               labels=["stream"])
    dead = GaugeMetricFamily("charla_stream_dead_letters", "Entries in the stream's dead-letter stream.",
                             labels=["stream"])
    pending = GaugeMetricFamily("charla_group_pending", "Entries delivered to the group and not acknowledged.",
                                labels=["stream", "group"])
    lag = GaugeMetricFamily("charla_group_lag", "Entries not yet delivered to the group.", labels=["stream", "group"])
    consumers = GaugeMetricFamily("charla_group_consumers", "Consumers registered in the group.",
                                  labels=["stream", "group"])
    for stream in stats:
        name = metrics.stream_label(stream.stream)
        length.add_metric([name], stream.length)
        dead.add_metric([name], stream.dead_letters)
        for group in stream.groups:
            pending.add_metric([name, group.name], group.pending)
            consumers.add_metric([name, group.name], group.consumers)
            if group.lag is not None:
                lag.add_metric([name, group.name], group.lag)
    return [length, dead, pending, lag, consumers]


def live_family(processes: Iterable[dict[str, Any]]) -> Metric:
    """How many processes of each agent (and orchestrators) published metrics lately."""
    counts: dict[str, int] = {}
    for snap in processes:
        counts[str(snap.get("process"))] = counts.get(str(snap.get("process")), 0) + 1
    live = GaugeMetricFamily("charla_live_processes", "Processes whose heartbeat is current, per agent.",
                             labels=["process"])
    for process, count in sorted(counts.items()):
        live.add_metric([process], count)
    return live


async def exposition(redis: Redis, bus: Bus, instance: str,
                     registry: CollectorRegistry = metrics.REGISTRY) -> bytes:
    """The /metrics body; this process's own metrics even when Redis is down (charla_redis_up 0)."""
    own = {"process": PROCESS, "instance": instance, "families": metrics.families(registry)}
    cluster: list[Metric] = []
    try:
        others = [s for s in await snapshots(redis) if (s.get("process"), s.get("instance")) != (PROCESS, instance)]
        stats = await asyncio.gather(*(bus.stats(stream) for stream in c.CONSUMER_GROUPS))
        cluster = [*stream_families(stats), live_family([own, *others])]
    except ERRORS as exc:
        log.warning("/metrics without cluster state: Redis unavailable (%s)", exc)
        others = []
    up = GaugeMetricFamily("charla_redis_up", "1 when this scrape could read Redis (snapshots, streams).",
                           value=1 if cluster else 0)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(Families([*metrics.merged([own, *others]), *cluster, up]))
    return generate_latest(scrape)


def scraper_allowed(request: Request, token: SecretStr | None) -> bool:
    """With CHARLA_METRICS_TOKEN set, only `Authorization: Bearer <token>` (compared in constant time)."""
    if token is None:
        return True
    given = request.headers.get("authorization", "").encode(errors="replace")
    return hmac.compare_digest(given, f"Bearer {token.get_secret_value()}".encode())


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format: labels name code paths only, never a learner or a text. Behind a bearer token
    when CHARLA_METRICS_TOKEN is set."""
    res: Resources = request.app.state.res
    if not scraper_allowed(request, res.settings.metrics_token):
        return JSONResponse({"error": "missing or wrong bearer token (CHARLA_METRICS_TOKEN)"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    body = await exposition(res.redis, res.bus, consumer_name(PROCESS))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
