"""End-to-end crash run on the local Redis Cluster: 4 partitions, consumer processes SIGKILLed and restarted
(under the same name, and under a new one) and a primary killed (its replica promoted) while events are
published; afterwards every event was completed exactly once, in order per learner, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from charla.core import constants as c
from charla.core.bus import Bus, BusConfig
from charla.core.events import Identity, InboundMessage
from tests.support.helpers import eventually
from tests.support.redis_cluster import LocalCluster, cluster_binaries

TOPIC = c.STREAM_INBOUND
PARTITIONS = 4
LEARNERS = 40
BATCH = 1000


class Consumers:
    """Consumer processes (tests.support.bus_consumer) recording what they handled and completed."""

    def __init__(self, url: str, record: Path) -> None:
        self.url, self.record = url, record
        self.procs: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str) -> None:
        self.procs[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.bus_consumer", self.url, TOPIC, "g", name, "8",
            "--partitions", str(PARTITIONS), "--cluster", "--lease-ms", "1000", "--record", str(self.record),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL)

    async def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            await proc.wait()

    def lines(self, kind: str) -> list[list[str]]:
        text = self.record.read_text() if self.record.exists() else ""
        return [line.split()[1:] for line in text.splitlines() if line.startswith(kind + " ")]

    async def handled(self) -> int:
        return len({fields[2] for fields in self.lines("handled") if len(fields) == 4})


def event(n: int) -> InboundMessage:
    learner = f"wa:3460{n % LEARNERS:04d}"
    return InboundMessage(id=f"ev-{n:05d}", learner=learner, provider="console", message_id=f"m-{n}",
                          identity=Identity(console=learner), kind="text", text=str(n))


async def publish_until_accepted(bus: Bus, numbers: range) -> None:
    """Publish each event, re-sending one that failed (as a provider re-sends a webhook) until accepted."""
    async def one(n: int) -> None:
        for _ in range(600):
            try:
                await bus.publish(TOPIC, event(n), dedupe_key=event(n).id)
                return
            except RedisError:
                await asyncio.sleep(0.1)  # the failover is under way: back off as a retrying client would
        raise AssertionError(f"event {n} never accepted")

    for first in range(numbers.start, numbers.stop, 50):
        await asyncio.gather(*(one(n) for n in range(first, min(first + 50, numbers.stop))))


@pytest.mark.skipif(cluster_binaries() is None, reason="needs the system's redis-server and redis-cli")
async def test_crashes_and_a_failover_lose_and_duplicate_nothing(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    client = RedisCluster.from_url(redis_cluster.url)
    await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    bus = Bus(client, BusConfig(partitions=PARTITIONS, tagged=True, lease_ms=1000))
    await bus.ensure_group(TOPIC, "g")
    consumers = Consumers(redis_cluster.url, tmp_path / "record.txt")
    try:
        await consumers.start("c1")
        await consumers.start("c2")
        await publish_until_accepted(bus, range(BATCH))
        await eventually(lambda: _more(consumers, 300), 60, "300 handled")
        await consumers.kill("c1")
        await consumers.start("c1")  # restarted under the same name: resumes its own pending at once
        await publish_until_accepted(bus, range(BATCH, 2 * BATCH))
        await eventually(lambda: _more(consumers, 1200), 60, "1200 handled")
        victim = bus.layout.streams(TOPIC)[0]
        await asyncio.to_thread(redis_cluster.kill_primary_of, victim)
        await publish_until_accepted(bus, range(2 * BATCH, 3 * BATCH))  # through the failover
        await asyncio.to_thread(redis_cluster.wait_promoted)
        await eventually(lambda: _more(consumers, 2500), 90, "2500 handled")
        await consumers.kill("c2")
        await consumers.start("c3")  # a new replica: c2's pending is taken over once its lease expires
        await publish_until_accepted(bus, range(3 * BATCH, 4 * BATCH))
        await eventually(lambda: _more(consumers, 4 * BATCH), 120, "every event handled")
        await eventually(lambda: _all_done(bus), 60, "every learner's sequence completed")
    finally:
        await consumers.stop()
        await client.aclose()
    completed = Counter(fields[0] for fields in consumers.lines("completed") if fields)
    assert [eid for eid, times in completed.items() if times > 1] == []  # nothing completed twice
    handled = [fields for fields in consumers.lines("handled") if len(fields) == 4]
    assert {fields[2] for fields in handled} == {event(n).id for n in range(4 * BATCH)}  # nothing lost
    first: dict[tuple[str, int], int] = {}
    for learner, seq, _, at in handled:
        first[learner, int(seq)] = min(int(at), first.get((learner, int(seq)), int(at)))
    for learner in {learner for learner, _ in first}:
        seqs = sorted((at, seq) for (who, seq), at in first.items() if who == learner)
        assert [seq for _, seq in seqs] == sorted(seq for _, seq in seqs), learner  # in order


async def _more(consumers: Consumers, count: int) -> bool:
    return await consumers.handled() >= count


async def _all_done(bus: Bus) -> bool:
    for stream in bus.streams(TOPIC):
        seqs = await bus.redis.hgetall(c.SEQ_KEY.format(stream=stream))
        done = await bus.redis.hgetall(c.DONE_KEY.format(stream=stream, group="g"))
        if any(int(done.get(learner, 0)) < int(seq) for learner, seq in seqs.items()):
            return False
    return True
