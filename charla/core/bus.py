"""The durable event bus: Redis Streams with consumer groups, per-learner order and a dead-letter stream.

Publishing runs one Lua script: optional dedupe key (SET NX), backlog check, per-learner sequence
(HINCRBY) and XADD, atomically, so an accepted event always has a gap-free sequence number; publishes
made at the same time share one pipelined round trip (charla.core.publisher). Consumers process an entry
only when its learner's previous sequence is done for their group (`begin`), and record completion, XACK
and lock release in one script (`complete`); the scripts are in charla.core.bus_scripts. Works on Redis 6.2
and 7.x, one server or a Redis Cluster.

Methods named for a `topic` (publish, ensure_group, stats, last_id, purge) cover all its partitions
(charla.core.partitions); those named for a `stream` act on one partition stream. While the partition count
changes (`previous_partitions`, docs/scaling.md) the previous layout's streams are consumed too, a publish
goes to the previous layout until its partition is sealed, and a learner's events on the new layout wait
until that learner has nothing left on the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from charla.core import bus_scripts as scripts
from charla.core import bus_stats
from charla.core import constants as c
from charla.core.bus_stats import GroupStats, StreamStats, id_key
from charla.core.events import Event, decode_event
from charla.core.partitions import Layout, dedupe_key, seal_key
from charla.core.publisher import Publisher
from charla.core.redis_client import AnyRedis, text

Turn = Literal["run", "wait", "done"]
_PAGE = 1000  # entries read per XRANGE when a stream is scanned


class BusError(RuntimeError):
    """Base class of bus failures."""


class BacklogFull(BusError):
    """The stream holds more unprocessed entries than CHARLA_BUS_MAX_BACKLOG: callers should shed load."""


class Sealed(BusError):
    """The partition is sealed (the partition count is changing) and this process knows no newer layout."""


@dataclass(frozen=True)
class BusConfig:
    max_deliveries: int = 5
    lease_ms: int = 15_000
    retention_s: int = 3600
    max_backlog: int = 200_000
    dedupe_ttl_s: int = 7 * 24 * 3600
    partitions: int = 1
    tagged: bool = False  # hash-tagged partition streams even with one partition (Redis Cluster)
    previous_partitions: int | None = None  # set while the partition count changes

    @property
    def layout(self) -> Layout:
        return Layout(self.partitions, self.tagged)

    @property
    def previous(self) -> Layout | None:
        return None if self.previous_partitions is None else Layout(self.previous_partitions, self.tagged)


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to a consumer."""

    stream: str
    entry_id: str
    learner: str
    seq: int
    payload: bytes

    def event(self) -> Event:
        return decode_event(self.payload)


__all__ = ["GroupStats", "StreamStats"]
_s = text


def _field(fields: dict[Any, Any], name: str) -> Any:
    return fields.get(name.encode(), fields.get(name))


def _delivery(stream: str, entry_id: bytes | str, fields: dict[Any, Any]) -> Delivery:
    payload = _field(fields, "e")
    return Delivery(stream=stream, entry_id=_s(entry_id), learner=_s(_field(fields, "l")),
                    seq=int(_field(fields, "s")), payload=payload if isinstance(payload, bytes) else payload.encode())


class Bus:
    """Publish and consume events on Redis Streams. One instance per process, shared by its tasks."""

    def __init__(self, redis: AnyRedis, config: BusConfig | None = None,
                 groups: Mapping[str, Sequence[str]] = c.CONSUMER_GROUPS) -> None:
        # Typed as one server's client for the callers' single-key commands, which a cluster client offers
        # alike; the bus's own multi-key work stays in one slot by construction (charla.core.partitions).
        self.redis = cast(Redis, redis)
        self.config = config or BusConfig()
        self.groups = groups
        self.layout, self.previous = self.config.layout, self.config.previous
        self._drained: set[tuple[str, str, str]] = set()  # (old stream, group, learner) seen drained
        self._drained_check = redis.register_script(scripts.DRAINED)
        self._publisher = Publisher(redis, redis.register_script(scripts.PUBLISH))
        # Consumers' per-entry scripts are batched like publishes: entries finishing together share a trip.
        self._begin = Publisher(redis, redis.register_script(scripts.BEGIN))
        self._complete = Publisher(redis, redis.register_script(scripts.COMPLETE))
        self._create_group = redis.register_script(scripts.CREATE_GROUP)
        self._advance = redis.register_script(scripts.ADVANCE)

    def streams(self, topic: str) -> list[str]:
        """Every partition stream of `topic` to consume: the layout's, and the previous one's meanwhile."""
        streams = self.layout.streams(topic)
        old = self.previous.streams(topic) if self.previous else []
        return streams + [stream for stream in old if stream not in streams]

    async def publish(self, topic: str, event: Event, *, dedupe_key: str | None = None) -> str | None:
        """Append `event` to its learner's partition of `topic`; None when `dedupe_key` was already
        published. Raises BacklogFull, or the Redis error that kept it from being published."""
        stream = self.layout.stream(topic, event.learner)
        old = self.previous.stream(topic, event.learner) if self.previous else stream
        if old != stream:
            with contextlib.suppress(Sealed):
                return await self._publish_to(old, topic, event, dedupe_key)
        return await self._publish_to(stream, topic, event, dedupe_key)

    async def _publish_to(self, stream: str, topic: str, event: Event, dedupe: str | None) -> str | None:
        groups = self.groups.get(topic, ())
        keys = [stream, c.SEQ_KEY.format(stream=stream), dedupe_key(stream, dedupe or ""), seal_key(stream),
                *(self._done_key(stream, group) for group in groups)]
        args: list[str | int] = [event.learner, event.model_dump_json(), self.config.dedupe_ttl_s,
                                 self.config.max_backlog, int(bool(dedupe)), *groups]
        try:
            entry = await self._publisher.submit(keys, args)
        except ResponseError as exc:
            if str(exc).startswith("BACKLOG"):
                raise BacklogFull(f"{stream} holds {self.config.max_backlog} unprocessed entries") from exc
            if str(exc).startswith("SEALED"):
                raise Sealed(f"{stream} is sealed: set CHARLA_BUS_PREVIOUS_PARTITIONS (docs/scaling.md)") from exc
            raise
        return None if entry is None else _s(entry)

    async def ensure_group(self, topic: str, group: str) -> bool:
        """Create `group` on every partition of `topic` (at its end) unless it exists; True when created now."""
        created = False
        for stream in self.streams(topic):
            keys = [stream, c.SEQ_KEY.format(stream=stream), self._done_key(stream, group)]
            created = bool(await self._create_group(keys=keys, args=[group])) or created
        return created

    async def read(self, stream: str, group: str, consumer: str, *, count: int, block_ms: int,
                   own_pending: bool = False) -> list[Delivery]:
        """New entries (or, with own_pending, this consumer's unacknowledged ones, e.g. after a restart)."""
        reply: Any = await self.redis.xreadgroup(group, consumer, {stream: "0" if own_pending else ">"},
                                                       count=count, block=None if own_pending else block_ms)
        return [_delivery(stream, eid, fields) for _, entries in reply or [] for eid, fields in entries
                if fields]

    async def claim_stale(self, stream: str, group: str, consumer: str, held: Container[str] = (),
                          count: int = 100) -> list[Delivery]:
        """Take over entries idle longer than the lease (their consumer died or hung).

        Claimed first without counting a delivery (JUSTID), so an entry this consumer still holds (its
        lease renewal ran late under load) is not counted again; only the others are claimed with a count.
        """
        # With JUSTID redis-py answers the claimed ids alone, whichever Redis (6.2: 2 elements, 7.x: 3).
        reply: Any = await self.redis.xautoclaim(stream, group, consumer, self.config.lease_ms, "0-0", count=count,
                                                 justid=True)
        ids: list[str | bytes | int | memoryview] = [_s(eid) for eid in reply if _s(eid) not in held]
        if not ids:
            return []
        claimed: Any = await self.redis.xclaim(stream, group, consumer, 0, ids)
        return [_delivery(stream, eid, fields) for eid, fields in claimed if fields]

    async def renew(self, stream: str, group: str, consumer: str, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of entries this consumer still works on, so nobody takes them over."""
        if entry_ids:
            await self.redis.xclaim(stream, group, consumer, 0, list(entry_ids), justid=True)

    async def redeliver(self, delivery: Delivery, group: str, consumer: str) -> int:
        """Claim `delivery` again (counting a new delivery); returns its delivery count."""
        await self.redis.xclaim(delivery.stream, group, consumer, 0, [delivery.entry_id])
        return await self.delivery_count(delivery, group)

    async def delivery_count(self, delivery: Delivery, group: str) -> int:
        rows = await self.redis.xpending_range(delivery.stream, group, min=delivery.entry_id,
                                               max=delivery.entry_id, count=1)
        return int(rows[0]["times_delivered"]) if rows else 0

    async def begin(self, delivery: Delivery, group: str, token: str) -> Turn:
        """'run' (this learner's turn, lock taken), 'wait' (a predecessor is not done) or 'done'."""
        if self.previous is not None and not await self._previous_drained(delivery, group):
            return "wait"
        keys = [self._done_key(delivery.stream, group), self._lock_key(delivery, group)]
        turn = await self._begin.submit(keys, [delivery.learner, delivery.seq, token, self.config.lease_ms])
        return cast(Turn, _s(turn))

    async def _previous_drained(self, delivery: Delivery, group: str) -> bool:
        """Whether the learner has nothing left for `group` on the previous layout. Final once true: their
        events reach the new layout only after their old partition was sealed."""
        assert self.previous is not None
        old = self.previous.stream(self.layout.topic(delivery.stream), delivery.learner)
        if old == delivery.stream or (old, group, delivery.learner) in self._drained:
            return True
        keys = [c.SEQ_KEY.format(stream=old), self._done_key(old, group)]
        if not await self._drained_check(keys=keys, args=[delivery.learner]):
            return False
        self._drained.add((old, group, delivery.learner))
        return True

    async def extend_lock(self, delivery: Delivery, group: str) -> None:
        await self.redis.pexpire(self._lock_key(delivery, group), self.config.lease_ms)

    async def release_lock(self, delivery: Delivery, group: str, token: str) -> None:
        key = self._lock_key(delivery, group)
        if _s(await self.redis.get(key) or b"") == token:
            await self.redis.delete(key)

    async def complete(self, delivery: Delivery, group: str, token: str) -> None:
        """Mark the learner's sequence done for `group`, XACK, release the lock, wake waiters."""
        keys = [self._done_key(delivery.stream, group), self._lock_key(delivery, group), delivery.stream]
        args: list[str | int] = [delivery.learner, delivery.seq, token, group, delivery.entry_id,
                                 self.done_channel(self.layout.topic(delivery.stream), group)]
        await self._complete.submit(keys, args)

    async def dead_letter(self, delivery: Delivery, group: str, token: str, *, error: str,
                          deliveries: int, consumer: str) -> None:
        """Move a poison entry to `<topic>:dead` with its error, then complete it so its learner moves on."""
        topic = self.layout.topic(delivery.stream)
        await self.redis.xadd(topic + c.DEAD_SUFFIX, {
            "stream": topic, "partition": delivery.stream, "group": group, "entry_id": delivery.entry_id,
            "learner": delivery.learner, "seq": delivery.seq, "consumer": consumer,
            "deliveries": deliveries, "error": error[:4000], "event": delivery.payload})
        await self.complete(delivery, group, token)

    async def skip_to(self, delivery: Delivery, group: str) -> None:
        """Emergency valve: treat every predecessor of `delivery` as done (they vanished from the stream)."""
        key = self._done_key(delivery.stream, group)
        if int(await self.redis.hget(key, delivery.learner) or 0) < delivery.seq - 1:
            await self.redis.hset(key, delivery.learner, str(delivery.seq - 1))

    async def last_seq(self, delivery: Delivery) -> int:
        """The newest sequence number published for the delivery's learner on its partition."""
        return int(await self.redis.hget(c.SEQ_KEY.format(stream=delivery.stream), delivery.learner) or 0)

    async def last_id(self, topic: str) -> str | None:
        """The id of the newest entry on any partition of `topic` (None when all are empty)."""
        ends = []
        for stream in self.streams(topic):
            rows: Any = await self.redis.xrevrange(stream, count=1)
            ends += [_s(rows[0][0])] if rows else []
        return max(ends, key=id_key) if ends else None

    async def purge(self, topic: str, learners: Container[str], upto: str = "+") -> int:
        """Delete every entry of `learners` on `topic` up to entry id `upto` (erasure); returns how many.

        The deleted sequences are marked done (and acknowledged) for every group first, so an entry of the
        same key published later never waits for one that is gone; one being handled now finishes normally.
        """
        return sum([await self._purge(stream, topic, learners, upto) for stream in self.streams(topic)])

    async def _purge(self, stream: str, topic: str, learners: Container[str], upto: str) -> int:
        found: list[tuple[str, str, int]] = []
        start = "-"
        while True:
            rows: Any = await self.redis.xrange(stream, start, upto, count=_PAGE)
            found += [(_s(eid), _s(_field(fields, "l")), int(_field(fields, "s"))) for eid, fields in rows
                      if _s(_field(fields, "l")) in learners]
            if len(rows) < _PAGE:
                break
            start = f"({_s(rows[-1][0])}"
        if not found:
            return 0
        highest: dict[str, int] = {}
        for _, learner, seq in found:
            highest[learner] = max(seq, highest.get(learner, 0))
        ids = [entry_id for entry_id, _, _ in found]
        for group in self.groups.get(topic, ()):
            channel = self.done_channel(topic, group)
            for learner, seq in highest.items():
                await self._advance(keys=[self._done_key(stream, group)], args=[learner, seq, channel])
            with contextlib.suppress(ResponseError):  # NOGROUP: a group never created has nothing pending
                await self.redis.xack(stream, group, *ids)
        return int(await self.redis.xdel(stream, *ids))

    async def ack(self, delivery: Delivery, group: str) -> None:
        await self.redis.xack(delivery.stream, group, delivery.entry_id)

    async def trim(self, stream: str) -> int:
        """Drop acknowledged history of `stream` older than CHARLA_BUS_RETENTION_S (bus_stats.trim)."""
        return await bus_stats.trim(self.redis, stream, self.config.retention_s)

    async def stats(self, topic: str) -> StreamStats:
        """Length, dead letters and, per group, consumers, pending and lag, summed over the partitions."""
        return await bus_stats.topic_stats(self.redis, topic, self.streams(topic))

    async def consumers(self, stream: str, group: str) -> list[dict[str, Any]]:
        return [{_s(k): v for k, v in row.items()} for row in await self.redis.xinfo_consumers(stream, group)]

    async def forget_consumer(self, stream: str, group: str, consumer: str) -> None:
        await self.redis.xgroup_delconsumer(stream, group, consumer)

    @staticmethod
    def done_channel(topic: str, group: str) -> str:
        """Where completions of `group` on any partition of `topic` are announced (payload: learner)."""
        return c.DONE_CHANNEL.format(stream=topic, group=group)

    @staticmethod
    def _done_key(stream: str, group: str) -> str:
        return c.DONE_KEY.format(stream=stream, group=group)

    @staticmethod
    def _lock_key(delivery: Delivery, group: str) -> str:
        return c.LOCK_KEY.format(stream=delivery.stream, group=group, learner=delivery.learner)


async def listen(redis: AnyRedis, channel: str, closing: asyncio.Event, handle: Callable[[str], None]) -> None:
    """Call `handle` with each message PUBLISHed on `channel` until `closing` is set, reconnecting.

    Stopped by an event, never by cancellation: redis-py can swallow a cancellation that lands in the
    middle of a command, and a cancelled listener then runs on forever.
    """
    while not closing.is_set():
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            while not closing.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    handle(_s(message["data"]))
        except (RedisConnectionError, RedisTimeoutError):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), 1.0)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
