"""Prometheus metrics: a real turn through the in-process stack shows up in GET /metrics; failing handlers,
provider errors and transcriptions are counted; snapshots of other processes are merged from Redis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from charla.cli.services import free_port
from charla.core import constants as c
from charla.core import metrics
from charla.core.bus import Bus, BusConfig, Delivery
from charla.core.errors import PermanentError
from charla.core.runtime import heartbeat
from charla.core.worker import Worker
from charla.tutor.llm import Completion, LLMRateLimited, Prompt
from charla.tutor.router import AllProvidersFailed, Route, Router
from orchestrator import scrape
from tests.core.test_bus import event
from tests.support.harness import Stack, running, running_stack
from tests.support.helpers import eventually
from tests.support.payloads import text_webhook

WA_ID, TEXT = "34600000077", "Hola, quiero practicar el pretérito"
PHONE_LIKE = re.compile(r"\d{8,}")


@dataclass(frozen=True)
class Scrape:
    """Parsed exposition: sample name -> list of (labels, value)."""

    samples: dict[str, list[tuple[dict[str, str], float]]]
    families: list[str]

    def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
        return sum(v for have, v in self.samples.get(name, []) if labels.items() <= have.items())

    def has(self, name: str, **labels: str) -> bool:
        return any(labels.items() <= have.items() for have, _ in self.samples.get(name, []))

    def label_values(self) -> Iterator[str]:
        for rows in self.samples.values():
            for labels, _ in rows:
                yield from labels.values()


def parse(text: str) -> Scrape:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    names = []
    for family in text_string_to_metric_families(text):
        names.append(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return Scrape(samples, names)


async def scraped(stack: Stack) -> Scrape:
    answer = await stack.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return parse(answer.text)


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0", CHARLA_HEARTBEAT_S="0.2") as up:
        yield up


async def test_a_turn_is_counted_from_webhook_to_send(stack: Stack) -> None:
    before = await scraped(stack)
    assert (await stack.post(text_webhook(WA_ID, "wamid.metrics1", TEXT))).status_code == 200
    refused = await stack.http.post("/webhooks/whatsapp", content=b"{}", headers={"x-hub-signature-256": "sha1=x"})
    assert refused.status_code == 401
    # a route with dependencies (Res) is wrapped too: FastAPI still resolves them through the wrapper
    assert (await stack.http.post("/webhooks/twilio", content=b"")).status_code == 404  # Twilio not configured
    await stack.fake.wait_for(1, seconds=20)

    async def sender_done() -> bool:
        now = await scraped(stack)
        return (now.value("charla_events_handled_total", agent="sender", stream="outbox")
                > before.value("charla_events_handled_total", agent="sender", stream="outbox")
                and now.value("charla_group_pending", stream="outbox", group="sender") == 0)

    await eventually(sender_done, 10, "the sender's handling is counted and nothing is left pending")
    after = await scraped(stack)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("charla_webhook_requests_total", endpoint="whatsapp", status="200") == 1
    assert grew("charla_webhook_requests_total", endpoint="whatsapp", status="401") == 1
    assert grew("charla_webhook_seconds_count", endpoint="whatsapp") == 2
    assert grew("charla_webhook_requests_total", endpoint="twilio", status="404") == 1
    assert 0 < grew("charla_webhook_seconds_sum", endpoint="whatsapp") < 5
    assert grew("charla_webhook_seconds_bucket", endpoint="whatsapp", le="+Inf") == 2
    assert grew("charla_events_handled_total", agent="conversation", stream="inbound") == 1
    assert grew("charla_event_seconds_count", agent="conversation", stream="inbound") == 1
    assert grew("charla_provider_seconds_count", provider="groq", operation="complete") >= 1
    assert 0 < grew("charla_provider_seconds_sum", provider="groq", operation="complete") < 30
    assert grew("charla_provider_seconds_count", provider="graph", operation="send") == 1
    assert grew("charla_events_failed_total", agent="conversation") == 0
    # every sample of this process carries who it is
    assert after.has("charla_webhook_requests_total", process="orchestrator")
    # cluster state, read from Redis at scrape time
    assert after.value("charla_stream_length", stream="inbound") >= 1
    assert after.has("charla_group_lag", stream="inbound", group="conversation")
    assert after.value("charla_group_lag", stream="inbound", group="conversation") == 0
    assert after.value("charla_group_pending", stream="inbound", group="conversation") == 0
    assert after.value("charla_stream_dead_letters", stream="inbound") == 0
    assert after.value("charla_live_processes", process="orchestrator") == 1
    assert after.value("charla_redis_up") == 1
    # no personal data in any label
    values = list(after.label_values())
    assert not [v for v in values if WA_ID in v or "pretérito" in v or PHONE_LIKE.search(v)]
    assert len(after.families) == len(set(after.families))  # one family per name


def handled_by(agent: str, name: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, {"agent": agent, "stream": "test:metrics"})
    return value or 0.0


async def test_failing_handlers_are_counted_as_failed_retried_and_dead_lettered(redis_default: Redis) -> None:
    bus = Bus(redis_default, BusConfig(lease_ms=2000, max_deliveries=3))
    stream, group = "test:metrics", "flaky"
    await bus.ensure_group(stream, group)
    attempts: dict[str, int] = {}
    done = asyncio.Event()

    async def flaky(delivery: Delivery) -> None:
        ev = delivery.event()
        attempts[ev.learner] = attempts.get(ev.learner, 0) + 1
        if ev.learner == "poison":
            raise PermanentError("never works")
        if attempts[ev.learner] == 1:
            raise RuntimeError("first try fails")
        done.set()

    await bus.publish(stream, event("poison", 1))
    await bus.publish(stream, event("flaky", 1))
    worker = Worker(bus, stream=stream, group=group, consumer="m1", handler=flaky, block_ms=100)
    async with running(worker):
        await asyncio.wait_for(done.wait(), 15)
        await eventually(lambda: _true(worker.stats.handled == 1 and worker.stats.dead_lettered == 1), 5,
                         "both entries settled")
    assert handled_by(group, "charla_events_failed_total") == 2
    assert handled_by(group, "charla_events_retried_total") == 1
    assert handled_by(group, "charla_events_dead_lettered_total") == 1
    assert handled_by(group, "charla_events_handled_total") == 1
    assert handled_by(group, "charla_event_seconds_count") == 3  # failed runs are timed too


async def _true(value: bool) -> bool:
    return value


@dataclass
class Scripted:
    """An LLM provider that fails with a rate limit, then answers."""

    name: str = "scripted"
    model: str = "m"
    demo: bool = False
    failures: int = 1

    async def complete(self, prompt: Prompt) -> Completion:
        if self.failures:
            self.failures -= 1
            raise LLMRateLimited(self.name, "429", 429)
        return Completion("{}", self.name, self.model, 1, 1, 1.0)

    async def close(self) -> None:
        return None


def provider_value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_provider_errors_are_counted_by_class_and_open_circuits_apart() -> None:
    router = Router({"scripted": Scripted(failures=2)}, ("scripted",), ("scripted",), threshold=1, cooldown_s=60)
    errors = {"provider": "scripted", "operation": "complete"}
    with pytest.raises(AllProvidersFailed):
        await router.complete(Route("default", ("scripted",)), Prompt("s", []))
    assert provider_value("charla_provider_errors_total", **errors, kind="LLMRateLimited") == 1
    assert provider_value("charla_provider_seconds_count", **errors) == 1
    with pytest.raises(AllProvidersFailed):  # the breaker is open now: the provider is not called
        await router.complete(Route("default", ("scripted",)), Prompt("s", []))
    assert provider_value("charla_provider_errors_total", **errors, kind="circuit_open") == 1
    assert provider_value("charla_provider_seconds_count", **errors) == 1


def process_registry(handled: float) -> CollectorRegistry:
    """What another process's registry holds: its own copy of a metric this process has too."""
    registry = CollectorRegistry()
    counter = Counter("charla_events_handled_total", "Bus events handled and acknowledged.", ["agent", "stream"],
                      registry=registry)
    counter.labels("conversation", "inbound").inc(handled)
    return registry


async def test_snapshots_of_other_processes_are_merged_and_expire(redis_default: Redis) -> None:
    await metrics.publish(redis_default, "conversation", "conv-a", 60_000, process_registry(3))
    await metrics.publish(redis_default, "conversation", "conv-b", 60_000, process_registry(4))
    await metrics.publish(redis_default, "sender", "gone", 1, process_registry(9))  # expires at once
    await redis_default.zadd(c.METRICS_INDEX_KEY, {c.METRICS_KEY.format(agent="sender", consumer="gone"): 1})
    own = process_registry(5)
    text = (await scrape.exposition(redis_default, Bus(redis_default), "orch-1", own)).decode()
    assert text.count("# TYPE charla_events_handled_total counter") == 1  # merged into one family
    found = parse(text)
    rows = sorted((labels["process"], labels["instance"], value)
                  for labels, value in found.samples["charla_events_handled_total"])
    assert rows == [("conversation", "conv-a", 3.0), ("conversation", "conv-b", 4.0), ("orchestrator", "orch-1", 5.0)]
    assert found.value("charla_live_processes", process="conversation") == 2
    assert found.value("charla_live_processes", process="orchestrator") == 1
    assert not found.has("charla_live_processes", process="sender")
    assert await redis_default.zcard(c.METRICS_INDEX_KEY) == 2  # the long-expired entry was pruned
    await metrics.withdraw(redis_default, "conversation", "conv-b")
    again = parse((await scrape.exposition(redis_default, Bus(redis_default), "orch-1", own)).decode())
    assert again.value("charla_events_handled_total") == 8


async def test_without_redis_a_scrape_still_serves_this_process() -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        found = parse((await scrape.exposition(down, Bus(down), "orch-1", process_registry(2))).decode())
    finally:
        await down.aclose()
    assert found.value("charla_events_handled_total", process="orchestrator") == 2
    assert found.value("charla_redis_up") == 0
    assert "charla_stream_length" not in found.samples


async def test_the_heartbeat_publishes_the_snapshot_with_the_same_expiry_and_withdraws_it(
        redis_default: Redis) -> None:
    closing = asyncio.Event()
    key = c.METRICS_KEY.format(agent="memory", consumer="mem-1")
    beat = asyncio.create_task(heartbeat(redis_default, "memory", "mem-1", 0.2, dict, closing,
                                         process_registry(1)))
    await eventually(lambda: redis_default.exists(key), 5, "snapshot written")
    assert 0 < await redis_default.pttl(key) <= 600
    assert 0 < await redis_default.pttl(c.HEARTBEAT_KEY.format(agent="memory", consumer="mem-1")) <= 600
    snapshots: list[dict[str, Any]] = await scrape.snapshots(redis_default)
    assert [(s["process"], s["instance"]) for s in snapshots] == [("memory", "mem-1")]
    closing.set()
    await beat
    assert not await redis_default.exists(key)
    assert await redis_default.zcard(c.METRICS_INDEX_KEY) == 0


def test_a_transcription_observes_its_time_and_real_time_factor() -> None:
    from tests.support.voice_kit import as_received, speak
    from voice import models
    from voice.stt import SttConfig, Transcriber

    stt = Transcriber(SttConfig(multilingual=models.tiny_en(), english=None, threads=2))
    samples = as_received(speak("Good morning, how are you?", "en"))
    names = ("charla_stt_real_time_factor_count", "charla_stt_real_time_factor_sum", "charla_stt_seconds_sum")
    before = [metrics.REGISTRY.get_sample_value(name) or 0.0 for name in names]
    heard = stt.transcribe(samples, "en")
    assert "morning" in heard.text.lower()
    count, rtf, took = (float(metrics.REGISTRY.get_sample_value(n) or 0.0) - b for n, b in zip(names, before,
                                                                                            strict=True))
    assert count == 1
    assert 0 < took < 30
    assert rtf == pytest.approx(took / heard.seconds, rel=1e-6)
