"""Partitioned topics: key layout and slots, partition leases, consumption over partitions, and changing
the partition count (drain-and-switch) with nothing lost, duplicated or out of order. Run on every
redis-server found and on the local Redis Cluster (`bus_redis`)."""

from __future__ import annotations

import asyncio
import zlib

from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.bus import Bus, BusConfig, Delivery
from charla.core.events import Identity, InboundMessage
from charla.core.leases import Leases, preference, share
from charla.core.partitions import Layout, dedupe_key, hash_tag, partition_index, seal_key
from charla.core.worker import Worker
from charla.ops import repartition
from tests.support.harness import running
from tests.support.helpers import eventually

TOPIC = "charla:stream:inbound"
GROUPS = {TOPIC: ("g",)}


def event(learner: str, n: int) -> InboundMessage:
    return InboundMessage(id=f"{learner}-{n}", learner=learner, provider="console", message_id=f"m-{n}",
                          identity=Identity(console=learner), kind="text", text=str(n))


def bus_of(redis: Redis, partitions: int, previous: int | None = None, lease_ms: int = 2000) -> Bus:
    config = BusConfig(lease_ms=lease_ms, partitions=partitions, tagged=True, previous_partitions=previous)
    return Bus(redis, config, groups=GROUPS)


class Seen:
    """What the handler saw, per learner, and how many times each event id ran."""

    def __init__(self) -> None:
        self.texts: dict[str, list[str]] = {}
        self.runs: dict[str, int] = {}
        self.by_consumer: dict[str, int] = {}
        self.gates: dict[str, asyncio.Event] = {}

    def handler(self, consumer: str) -> object:
        async def handle(delivery: Delivery) -> None:
            ev = delivery.event()
            assert isinstance(ev, InboundMessage)
            if ev.id in self.gates:
                await self.gates[ev.id].wait()
            self.texts.setdefault(ev.learner, []).append(ev.text or "")
            self.runs[ev.id] = self.runs.get(ev.id, 0) + 1
            self.by_consumer[consumer] = self.by_consumer.get(consumer, 0) + 1

        return handle

    async def total(self) -> int:
        return sum(self.runs.values())


def worker(bus: Bus, seen: Seen, consumer: str) -> Worker:
    return Worker(bus, stream=TOPIC, group="g", consumer=consumer, handler=seen.handler(consumer),  # type: ignore[arg-type]
                  concurrency=8, block_ms=100)


def test_one_partition_keeps_the_unpartitioned_names() -> None:
    assert Layout().streams(TOPIC) == [TOPIC]
    assert dedupe_key(TOPIC, "wamid.1") == "charla:dedupe:wamid.1"
    assert Layout(1, tagged=True).streams(TOPIC) == [TOPIC + ":{inbound.p0of1}"]


def test_a_partition_and_every_key_its_scripts_touch_share_one_hash_tag() -> None:
    streams = Layout(4).streams(TOPIC)
    assert streams == [f"{TOPIC}:{{inbound.p{p}of4}}" for p in range(4)]
    stream = streams[2]
    keys = [stream, c.SEQ_KEY.format(stream=stream), c.DONE_KEY.format(stream=stream, group="g"),
            c.LOCK_KEY.format(stream=stream, group="g", learner="wa:{odd}"), dedupe_key(stream, "x{y}"),
            seal_key(stream), stream + c.DEAD_SUFFIX]
    assert {hash_tag(key) for key in keys} == {"inbound.p2of4"}
    assert Layout(4).topic(stream) == TOPIC
    assert Layout(4).streams(stream) == [stream]  # a partition is its own single partition


def test_a_learner_always_lands_in_the_same_partition() -> None:
    assert partition_index("wa:34600000001", 4) == zlib.crc32(b"wa:34600000001") % 4
    layout = Layout(4)
    assert len({layout.stream(TOPIC, f"wa:{n}") for n in range(100)}) == 4


def test_each_consumer_gets_a_fair_share_and_its_own_partitions_first() -> None:
    assert [share(4, ["a", "b", "c"], me) for me in "abc"] == [2, 1, 1]
    assert share(4, ["a"], "b") == 0
    assert preference(["p0", "p1", "p2", "p3"], ["a", "b"], "b") == ["p1", "p3", "p0", "p2"]


async def test_a_new_consumer_takes_a_share_and_a_dead_ones_partitions_move(bus_redis: Redis) -> None:
    streams = Layout(4).streams(TOPIC)

    def lease(name: str) -> Leases:
        return Leases(bus_redis, topic=TOPIC, group="g", consumer=name, streams=streams, lease_ms=400)

    first, second = lease("a"), lease("b")
    assert len(await first.refresh()) == 4
    assert await second.refresh() == set()  # all held: b waits for a to give some back
    assert len(await first.refresh()) == 2
    assert len(await second.refresh()) == 2
    assert not (first.owned & second.owned)

    async def b_owns_all() -> bool:  # a stops renewing (died): its leases and membership expire
        return len(await second.refresh()) == 4

    await eventually(b_owns_all, 10, "b took over a's partitions")


async def test_partitions_are_consumed_in_order_once_by_two_consumers(bus_redis: Redis) -> None:
    bus = bus_of(bus_redis, 4)
    await bus.ensure_group(TOPIC, "g")
    learners = [f"wa:{n}" for n in range(12)]
    for n in range(20):
        await asyncio.gather(*(bus.publish(TOPIC, event(learner, n), dedupe_key=f"{learner}-{n}")
                               for learner in learners))
    seen = Seen()
    async with running(worker(bus, seen, "c1"), worker(bus_of(bus_redis, 4), seen, "c2")):
        await eventually(lambda: _at_least(seen, 240), 30, "240 events handled")

        async def split() -> bool:
            owners = [await bus_redis.get(c.LEASE_KEY.format(stream=s, group="g")) for s in bus.streams(TOPIC)]
            return sorted(str(owner) for owner in owners) == ["b'c1'", "b'c1'", "b'c2'", "b'c2'"]

        await eventually(split, 15, "two partitions each")
    assert all(runs == 1 for runs in seen.runs.values())
    assert all(seen.texts[learner] == [str(n) for n in range(20)] for learner in learners)
    assert (await bus.stats(TOPIC)).length == 240


async def _at_least(seen: Seen, count: int) -> bool:
    return await seen.total() >= count


async def test_changing_the_partition_count_loses_duplicates_and_reorders_nothing(bus_redis: Redis) -> None:
    old = bus_of(bus_redis, 1)
    await old.ensure_group(TOPIC, "g")
    learners = ["wa:ana", "wa:bob", "wa:eva"]
    for learner in learners:  # before the change, on one partition; ana's first is held by her handler
        await old.publish(TOPIC, event(learner, 0), dedupe_key=f"{learner}-0")
    seen = Seen()
    seen.gates["wa:ana-0"] = asyncio.Event()
    switching = bus_of(bus_redis, 4, previous=1)
    async with running(worker(switching, seen, "c1"), worker(bus_of(bus_redis, 4, previous=1), seen, "c2")):
        for learner in learners:  # published before the seal: still on the old partition
            await switching.publish(TOPIC, event(learner, 1), dedupe_key=f"{learner}-1")
        assert await repartition.seal(switching, [TOPIC]) == 1
        for learner in learners:  # after it: on the new partitions
            await switching.publish(TOPIC, event(learner, 2), dedupe_key=f"{learner}-2")
        assert await switching.publish(TOPIC, event("wa:bob", 1), dedupe_key="wa:bob-1") is None  # a retry
        await eventually(lambda: _at_least(seen, 6), 15, "bob's and eva's three events")
        assert seen.texts.get("wa:ana") is None  # her new-layout event waits behind her old ones
        seen.gates["wa:ana-0"].set()
        await eventually(lambda: _at_least(seen, 9), 15, "all nine events")
        assert await repartition.drain(switching, 10, GROUPS) == {TOPIC: 0}
    assert all(seen.texts[learner] == ["0", "1", "2"] for learner in learners)
    assert all(runs == 1 for runs in seen.runs.values())
    new_streams = Layout(4).streams(TOPIC)
    assert sum([await bus_redis.xlen(stream) for stream in new_streams]) == 3
