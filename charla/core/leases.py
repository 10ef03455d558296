"""Which consumer of a group reads which partition: leases in Redis, a fair share each.

Every consumer of a group keeps its name in the group's member set (a score = when it expires) and owns
partitions through lease keys (SET NX PX, renewed while it lives). Each refresh it computes its share from
the live members (partitions / members, the first ones in name order taking the remainder), gives back
what it holds beyond it and takes free partitions up to it, its "own" ones (p ≡ its rank) first. A new
replica therefore takes a share within a refresh or two; a dead one's partitions are taken once its
lease and member entry expire. Ownership only spreads the load: order and exactly-once come from the
bus's per-learner scripts, so two consumers briefly reading one partition is harmless. Every command
touches one key, so the leases work on Redis Cluster as they do on one server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from charla.core import constants as c
from charla.core.redis_client import AnyRedis, text

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def share(partitions: int, members: Sequence[str], me: str) -> int:
    """How many of `partitions` the consumer `me` should own among the live `members` (sorted)."""
    if me not in members:
        return 0
    rank, count = members.index(me), len(members)
    return partitions // count + (1 if rank < partitions % count else 0)


def preference(streams: Sequence[str], members: Sequence[str], me: str) -> list[str]:
    """`streams` in the order `me` tries to take them: its own (index ≡ rank) first, then the others."""
    rank, count = (members.index(me), len(members)) if me in members else (0, 1)
    own = [s for i, s in enumerate(streams) if i % count == rank]
    return own + [s for s in streams if s not in own]


class Leases:
    """The partitions of `topic` that `consumer` of `group` owns, kept up to date by `refresh`."""

    def __init__(self, redis: AnyRedis, *, topic: str, group: str, consumer: str, streams: Sequence[str],
                 lease_ms: int) -> None:
        self.redis, self.group, self.consumer = redis, group, consumer
        self.streams = list(streams)
        self.lease_ms = lease_ms
        self.owned: set[str] = set()
        self._members = c.MEMBERS_KEY.format(topic=topic, group=group)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)

    def _key(self, stream: str) -> str:
        return c.LEASE_KEY.format(stream=stream, group=self.group)

    async def members(self) -> list[str]:
        """The group's live consumers, in name order, this one included (its entry is renewed first)."""
        now = int(time.time() * 1000)
        await self.redis.zadd(self._members, {self.consumer: now + self.lease_ms})
        await self.redis.zremrangebyscore(self._members, "-inf", now)
        names: Any = await self.redis.zrange(self._members, 0, -1)  # without scores: the names alone
        return sorted(text(name) for name in names)

    async def refresh(self) -> set[str]:
        """Renew, give back or take leases so this consumer owns its share; the partitions it owns now."""
        members = await self.members()
        target = share(len(self.streams), members, self.consumer)
        for stream in sorted(self.owned):
            if not await self._renew(keys=[self._key(stream)], args=[self.consumer, self.lease_ms]):
                self.owned.discard(stream)  # expired while we were away, maybe taken by another
        for stream in sorted(self.owned, reverse=True)[:max(len(self.owned) - target, 0)]:
            await self._give_back(stream)
        for stream in preference(self.streams, members, self.consumer):
            if len(self.owned) >= target:
                break
            if stream not in self.owned and await self.redis.set(self._key(stream), self.consumer, nx=True,
                                                                 px=self.lease_ms):
                self.owned.add(stream)
        return set(self.owned)

    async def _give_back(self, stream: str) -> None:
        await self._release(keys=[self._key(stream)], args=[self.consumer])
        self.owned.discard(stream)

    async def release(self) -> None:
        """Give back every lease and leave the member set (a graceful stop: others take over at once)."""
        for stream in list(self.owned):
            await self._give_back(stream)
        await self.redis.zrem(self._members, self.consumer)
