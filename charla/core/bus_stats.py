"""Read-side bus upkeep: a topic's statistics summed over its partitions (for `charla status` and /metrics),
and trimming a partition stream's acknowledged history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from charla.core import constants as c
from charla.core.redis_client import AnyRedis, text


@dataclass(frozen=True)
class GroupStats:
    name: str
    consumers: int
    pending: int
    lag: int | None


@dataclass(frozen=True)
class StreamStats:
    stream: str
    length: int
    dead_letters: int
    groups: list[GroupStats]


async def topic_stats(redis: AnyRedis, topic: str, streams: Sequence[str]) -> StreamStats:
    """Length, dead letters and per group consumers (the most on one partition), pending and lag (summed)."""
    length, groups = 0, dict[str, GroupStats]()
    for stream in streams:
        part = await stream_stats(redis, stream)
        length += part.length
        for group in part.groups:
            seen = groups.get(group.name, GroupStats(group.name, 0, 0, 0))
            lag = None if seen.lag is None or group.lag is None else seen.lag + group.lag
            groups[group.name] = GroupStats(group.name, max(seen.consumers, group.consumers),
                                            seen.pending + group.pending, lag)
    dead = int(await redis.xlen(topic + c.DEAD_SUFFIX))
    return StreamStats(stream=topic, length=length, dead_letters=dead, groups=list(groups.values()))


async def stream_stats(redis: AnyRedis, stream: str) -> StreamStats:
    """One partition stream's length and groups (its dead letters are counted on the topic)."""
    length = int(await redis.xlen(stream))
    groups: list[GroupStats] = []
    if length or await redis.exists(stream):
        for info in await redis.xinfo_groups(stream):
            groups.append(GroupStats(name=text(info["name"]), consumers=int(info["consumers"]),
                                     pending=int(info["pending"]), lag=await _lag(redis, stream, info)))
    return StreamStats(stream=stream, length=length, dead_letters=0, groups=groups)


async def _lag(redis: AnyRedis, stream: str, info: dict[str, Any]) -> int | None:
    lag = info.get("lag")
    if lag is not None:  # Redis 7 tracks it
        return int(lag)
    after = next_id(text(info["last-delivered-id"]))
    entries: Any = await redis.xrange(stream, after, "+", count=100_000)
    return len(entries)


async def trim(redis: AnyRedis, stream: str, retention_s: int) -> int:
    """Drop acknowledged history older than `retention_s`; never an entry a group still needs.

    Entry ids are millisecond timestamps, so the cut is a MINID computed from the server's clock:
    no scan of the stream, whatever its length.
    """
    seconds, micros = await redis.time()
    horizon = f"{seconds * 1000 + micros // 1000 - retention_s * 1000}-0"
    safe = await _oldest_needed(redis, stream)
    limit = min((safe, horizon), key=id_key) if safe else horizon
    return int(await redis.xtrim(stream, minid=limit, approximate=False))


async def _oldest_needed(redis: AnyRedis, stream: str) -> str | None:
    needed: list[str] = []
    for group in await redis.xinfo_groups(stream):
        name = text(group["name"])
        if int(group["pending"]):
            summary = await redis.xpending(stream, name)
            if summary.get("min"):  # acknowledged meanwhile: nothing to keep for this group
                needed.append(text(summary["min"]))
        needed.append(next_id(text(group["last-delivered-id"])))
    return min(needed, key=id_key) if needed else None


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable (milliseconds, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    ms, seq = id_key(entry_id)
    return f"{ms}-{seq + 1}"
