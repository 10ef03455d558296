"""Changing the bus's partition count without losing or duplicating an event (docs/scaling.md).

Drain-and-switch: with CHARLA_BUS_PREVIOUS_PARTITIONS set everywhere, `seal` marks every partition of the
previous layout sealed; from then on publishes go to the new layout, consumers finish the old partitions,
and a learner's new events wait until that learner's old ones are done. `left` counts what the old
partitions still hold for their groups: the switch is complete when it reaches 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from charla.core import constants as c
from charla.core.bus import Bus
from charla.core.bus_stats import stream_stats
from charla.core.partitions import seal_key


class NotChanging(RuntimeError):
    """CHARLA_BUS_PREVIOUS_PARTITIONS is not set: there is no previous layout to seal or drain."""


def _old_streams(bus: Bus, topic: str) -> list[str]:
    if bus.previous is None:
        raise NotChanging("set CHARLA_BUS_PREVIOUS_PARTITIONS to the old partition count first (docs/scaling.md)")
    new = set(bus.layout.streams(topic))
    return [stream for stream in bus.previous.streams(topic) if stream not in new]


async def seal(bus: Bus, topics: Sequence[str] = tuple(c.CONSUMER_GROUPS)) -> int:
    """Seal every partition of the previous layout; how many were sealed now (0: done before)."""
    sealed = 0
    for topic in topics:
        for stream in _old_streams(bus, topic):
            sealed += bool(await bus.redis.set(seal_key(stream), "1", nx=True))
    return sealed


async def left(bus: Bus, groups: Mapping[str, Sequence[str]] = c.CONSUMER_GROUPS) -> dict[str, int]:
    """Per topic, the entries on the previous layout that a group has not completed (undelivered or
    pending); every value 0 means the old partitions are drained."""
    counts: dict[str, int] = {}
    for topic, names in groups.items():
        counts[topic] = 0
        for stream in _old_streams(bus, topic):
            stats = await stream_stats(bus.redis, stream)
            counts[topic] += sum((g.lag or 0) + g.pending for g in stats.groups if g.name in names)
    return counts


async def drain(bus: Bus, seconds: float, groups: Mapping[str, Sequence[str]] = c.CONSUMER_GROUPS) -> dict[str, int]:
    """Wait (polling once a second, up to `seconds`) until the previous layout is drained; what is left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        counts = await left(bus, groups)
        if not any(counts.values()) or loop.time() >= deadline:
            return counts
        await asyncio.sleep(1.0)
