"""Consume one topic as one consumer of a group: ordered per learner, parallel across learners.

The consumer reads the partitions it owns (charla.core.leases; all of them while it owns none, i.e. when
there are more consumers than partitions), one reader task per partition. Each entry runs as its own
task: wait for its learner's turn, take a concurrency slot, run the handler,
then complete (mark done + XACK) in one script. Failures are retried with backoff by claiming the entry
again (so Redis counts the delivery), the slot given back while waiting; after CHARLA_BUS_MAX_DELIVERIES it
goes to the dead-letter stream.
A background task renews the lease of held entries; another takes over entries of dead consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from charla.core import logs, metrics
from charla.core.bus import Bus, Delivery, listen
from charla.core.errors import PermanentError, TransientError
from charla.core.leases import Leases
from charla.core.redis_client import AnyRedis, text

log = logging.getLogger(__name__)

# A handler gets the whole delivery: the event (`delivery.event()`) and where it sits (learner, seq).
Handler = Callable[[Delivery], Awaitable[None]]


@dataclass
class WorkerStats:
    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    duplicates: int = 0


class Waiter:
    """Wakes tasks waiting for a learner's predecessor, from local completions and other processes."""

    def __init__(self, redis: AnyRedis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._events: dict[str, asyncio.Event] = {}

    def prepare(self, learner: str) -> asyncio.Event:
        return self._events.setdefault(learner, asyncio.Event())

    def notify(self, learner: str) -> None:
        event = self._events.pop(learner, None)
        if event is not None:
            event.set()

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def listen(self, closing: asyncio.Event) -> None:
        """Forward the group's done-notifications to local waiters until `closing`."""
        await listen(self._redis, self._channel, closing, self.notify)


class Worker:
    """One consumer of `group` on every partition of the topic `stream`, running `handler` for each event."""

    def __init__(self, bus: Bus, *, stream: str, group: str, consumer: str, handler: Handler,
                 concurrency: int = 8, block_ms: int = 1000) -> None:
        self.bus, self.stream, self.group, self.consumer = bus, stream, group, consumer
        self.handler = handler
        self.block_ms = block_ms
        self.stats = WorkerStats()
        self.metrics = metrics.event_metrics(group, stream)
        self.max_held = concurrency * 4
        self._slots = asyncio.Semaphore(concurrency)
        self._held: dict[tuple[str, str], asyncio.Task[None]] = {}  # (stream, entry id) -> its task
        self._running: dict[tuple[str, str], Delivery] = {}
        self._room = asyncio.Event()
        self._waiter = Waiter(bus.redis, bus.done_channel(stream, group))
        self._lease_s = bus.config.lease_ms / 1000
        self._stopping = False
        self.streams = bus.streams(stream)
        self.leases = Leases(bus.redis, topic=stream, group=group, consumer=consumer, streams=self.streams,
                             lease_ms=bus.config.lease_ms)
        self.reading: set[str] = set()  # the partitions read now: those owned, else all
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._seqs: set[tuple[str, str, int]] = set()  # (stream, learner, seq) of the entries held

    @property
    def in_flight(self) -> int:
        return len(self._held)

    async def run(self, stop: asyncio.Event, drain_timeout: float = 30.0) -> None:
        """Consume until `stop` is set, then finish running handlers (up to drain_timeout) and return."""
        await self.bus.ensure_group(self.stream, self.group)
        closing = asyncio.Event()
        background = [asyncio.create_task(self._waiter.listen(closing)),
                      asyncio.create_task(self._every(self._lease_s / 3, closing, self._renew)),
                      asyncio.create_task(self._every(min(self._lease_s / 2, 5.0), closing, self._maintain))]
        try:
            await self._recover_own_pending()
            while not stop.is_set():
                await _logged(self._rebalance(stop))
                await _pause(stop, min(self._lease_s / 3, 1.0))
        finally:
            self.reading.clear()
            await asyncio.gather(*self._readers.values(), return_exceptions=True)
            await self._drain(drain_timeout)
            closing.set()
            await asyncio.gather(*background, return_exceptions=True)
            await _logged(self.leases.release())

    async def _rebalance(self, stop: asyncio.Event) -> None:
        """Renew or adjust this consumer's partitions; start a reader for each one it now reads (readers
        of partitions it no longer reads stop after their current read)."""
        self.reading = await self.leases.refresh() or set(self.streams)
        for stream in self.reading - self._readers.keys():
            task = asyncio.create_task(self._reader(stream, stop))
            self._readers[stream] = task
            task.add_done_callback(lambda _, stream=stream: self._readers.pop(stream, None))  # type: ignore[misc]

    async def _reader(self, stream: str, stop: asyncio.Event) -> None:
        while not stop.is_set() and stream in self.reading:
            await self._read_safely(stream, stop)

    async def _read_safely(self, stream: str, stop: asyncio.Event) -> None:
        try:
            await self._read_batch(stream)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("%s: consumer group vanished (Redis lost its data?); recreating it", self.group)
            await self.bus.ensure_group(stream, self.group)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("%s: Redis unavailable (%s); retrying in 1s", self.group, exc)
            await _pause(stop, 1.0)

    async def _read_batch(self, stream: str) -> None:
        room = self.max_held - len(self._held)
        if room <= 0:
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), self.block_ms / 1000)
            return
        for delivery in await self.bus.read(stream, self.group, self.consumer, count=room, block_ms=self.block_ms):
            self._spawn(delivery, check=False)

    async def _recover_own_pending(self) -> None:
        """After a restart under the same consumer name, our unacknowledged entries come first (on every
        partition: a restart may well get other partitions than before)."""
        for stream in self.streams:
            entries = await self.bus.read(stream, self.group, self.consumer, count=10_000, block_ms=0,
                                          own_pending=True)
            for delivery in entries:  # reading our own history counted this delivery already (XREADGROUP 0)
                self._spawn(delivery, check=True)

    def _spawn(self, delivery: Delivery, *, check: bool) -> None:
        """Start a task for `delivery`. check: dead-letter it if it has been delivered too often already
        (crash loops). Every way an entry reaches us (read, own history, claim) has counted the delivery."""
        held = (delivery.stream, delivery.entry_id)
        if held in self._held:
            return
        task = asyncio.create_task(self._process(delivery, check=check))
        self._held[held] = task
        self._seqs.add((delivery.stream, delivery.learner, delivery.seq))
        task.add_done_callback(lambda t: self._forget(delivery, t))

    def _forget(self, delivery: Delivery, task: asyncio.Task[None]) -> None:
        entry_id = delivery.entry_id
        self._held.pop((delivery.stream, entry_id), None)
        self._seqs.discard((delivery.stream, delivery.learner, delivery.seq))
        self._waiter.notify(delivery.learner)  # a successor waiting on this one (done elsewhere, say)
        self._room.set()
        if not task.cancelled() and task.exception() is not None:
            # The entry stays pending; once its lease runs out it is claimed and retried.
            log.error("%s: %s interrupted: %r", self.group, entry_id, task.exception())

    async def _process(self, delivery: Delivery, *, check: bool) -> None:
        token = uuid.uuid4().hex
        if check:
            deliveries = await self.bus.delivery_count(delivery, self.group)
            if deliveries > self.bus.config.max_deliveries:
                await self._dead_letter(delivery, token, deliveries,
                                        f"delivered {deliveries} times without completing (consumer died?)")
                return
        if not await self._await_turn(delivery, token):
            return
        try:
            self._running[delivery.stream, delivery.entry_id] = delivery
            await self._handle(delivery, token)
        except asyncio.CancelledError:
            await self.bus.release_lock(delivery, self.group, token)
            raise
        finally:
            self._running.pop((delivery.stream, delivery.entry_id), None)

    async def _await_turn(self, delivery: Delivery, token: str) -> bool:
        """True when it is this entry's turn (lock taken); False when it was already done (acked) or
        the worker is stopping."""
        started = time.monotonic()
        gap_limit = (self.bus.config.max_deliveries + 2) * self._lease_s
        while True:
            if self._stopping:
                return False  # left pending: a restart under the same name resumes it at once
            wake = self._waiter.prepare(delivery.learner)
            if (delivery.stream, delivery.learner, delivery.seq - 1) in self._seqs:
                # The predecessor is held here and not finished: its completion wakes us; asking Redis
                # now would only answer 'wait' (half the scripts a burst of one learner ran).
                await self._waiter.wait(wake, seconds=min(1.0, self._lease_s / 2))
                continue
            turn = await self.bus.begin(delivery, self.group, token)
            if turn == "run":
                return True
            if turn == "done":
                self.stats.duplicates += 1
                await self.bus.ack(delivery, self.group)
                return False
            if time.monotonic() - started > gap_limit:
                log.error("learner %s: predecessor of seq %s never completed in %.0fs; moving on",
                          logs.pseudonym(delivery.learner), delivery.seq, gap_limit)
                await self.bus.skip_to(delivery, self.group)
            await self._waiter.wait(wake, seconds=min(1.0, self._lease_s / 2))

    async def _handle(self, delivery: Delivery, token: str) -> None:
        while True:
            try:
                await self._timed(delivery)
            except (PermanentError, ValidationError) as exc:
                self.stats.failed += 1
                self.metrics.failed.inc()
                await self._dead_letter(delivery, token, 1, _describe(exc))
                return
            except Exception as exc:
                self.stats.failed += 1
                self.metrics.failed.inc()
                deliveries = await self.bus.delivery_count(delivery, self.group)
                if deliveries >= self.bus.config.max_deliveries:
                    await self._dead_letter(delivery, token, deliveries, _describe(exc))
                    return
                log.warning("%s: %s failed (delivery %d), retrying: %s", self.group, delivery.entry_id,
                            deliveries, exc)
                self.stats.retried += 1
                self.metrics.retried.inc()
                await asyncio.sleep(_backoff(deliveries, self._lease_s, exc))
                await self.bus.redeliver(delivery, self.group, self.consumer)
                continue
            await self.bus.complete(delivery, self.group, token)
            self.stats.handled += 1
            self.metrics.handled.inc()
            self._waiter.notify(delivery.learner)
            return

    async def _timed(self, delivery: Delivery) -> None:
        # A slot per handler call, not per entry: one waiting out a retry's backoff (a recipient's rate
        # limit, say) must not keep other learners' entries from running.
        async with self._slots:
            started = time.perf_counter()
            try:
                await self.handler(delivery)
            finally:
                self.metrics.seconds.observe(time.perf_counter() - started)

    async def _dead_letter(self, delivery: Delivery, token: str, deliveries: int, error: str) -> None:
        log.error("%s: dead-lettering %s after %d deliveries: %s", self.group, delivery.entry_id,
                  deliveries, error.splitlines()[-1] if error else "")
        await self.bus.dead_letter(delivery, self.group, token, error=error, deliveries=deliveries,
                                   consumer=self.consumer)
        self.stats.dead_lettered += 1
        self.metrics.dead_lettered.inc()
        self._waiter.notify(delivery.learner)

    async def _drain(self, seconds: float) -> None:
        """Let running handlers finish; entries still waiting for their turn stay pending."""
        self._stopping = True
        tasks = list(self._held.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=seconds)
        for task in late:
            task.cancel()
        if late and (await asyncio.wait(late, timeout=5))[1]:
            log.error("%s: handlers still running at exit; their entries stay pending for the next start", self.group)

    async def _every(self, seconds: float, closing: asyncio.Event, work: Callable[[], Awaitable[None]]) -> None:
        while not closing.is_set():
            await _pause(closing, seconds)
            if not closing.is_set():
                await _logged(work())

    async def _renew(self) -> None:
        for stream in {stream for stream, _ in self._held}:
            held = [entry_id for held_stream, entry_id in self._held if held_stream == stream]
            await self.bus.renew(stream, self.group, self.consumer, held)
        for delivery in list(self._running.values()):
            await self.bus.extend_lock(delivery, self.group)

    async def _maintain(self) -> None:
        """On each partition read: take over dead consumers' entries, trim, forget long-idle consumers."""
        for stream in sorted(self.reading):
            held = {entry_id for held_stream, entry_id in self._held if held_stream == stream}
            if not self._stopping:
                for delivery in await self.bus.claim_stale(stream, self.group, self.consumer, held=held):
                    self._spawn(delivery, check=True)
            await self.bus.trim(stream)
            for consumer in await self.bus.consumers(stream, self.group):
                idle_s = int(consumer["idle"]) / 1000
                if text(consumer["name"]) != self.consumer and int(consumer["pending"]) == 0 \
                        and idle_s > 10 * self._lease_s:
                    await self.bus.forget_consumer(stream, self.group, text(consumer["name"]))


async def _logged(coro: Awaitable[None]) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        _raise_if_cancelling()
        log.exception("bus maintenance failed; will retry")


def _raise_if_cancelling() -> None:
    """redis-py may turn a cancellation in mid-command into a ConnectionError: do not swallow it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _backoff(deliveries: int, lease_s: float, exc: Exception) -> float:
    """Exponential with full jitter, at least what the provider asked for (`retry_after`)."""
    ceiling = min(0.2 * 2 ** deliveries, lease_s)
    asked = exc.retry_after if isinstance(exc, TransientError) and exc.retry_after else 0.0
    return max(asked, random.uniform(ceiling / 2, ceiling))


async def _pause(until: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `until` is set first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until.wait(), seconds)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()
