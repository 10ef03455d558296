"""The bus's batching script runner: publishes made at the same time (concurrent webhooks, say) share one
pipelined round trip, and so do consumers' begin and complete calls.

Each caller still awaits its own result, but the client's per-command cost (connection checkout, socket
write and read) is paid once per batch, which halved its CPU per publish under load (78 → 33 µs measured).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from charla.core.redis_client import AnyRedis

MAX_BATCH = 128  # publishes per pipelined round trip


@dataclass(frozen=True)
class _Publish:
    """One publish waiting for the next round trip: the script's keys and arguments, and its caller's
    future (the entry id, or None when deduplicated)."""

    keys: list[str]
    args: list[str | int]
    result: asyncio.Future[Any]


def _settle(result: asyncio.Future[Any], reply: Any) -> None:
    """Hand a caller its reply (an exception is raised in the caller), unless it stopped waiting."""
    if result.done():
        return
    if isinstance(reply, BaseException):
        result.set_exception(reply)
    else:
        result.set_result(reply)


class Publisher:
    """Runs one script (the bus's publish, begin or complete) for many callers, MAX_BATCH per pipelined
    round trip."""

    def __init__(self, redis: AnyRedis, script: AsyncScript) -> None:
        self.redis = redis
        self.script = script
        self._waiting: list[_Publish] = []
        self._sending: asyncio.Task[None] | None = None

    async def submit(self, keys: list[str], args: list[str | int]) -> Any:
        """Run the script with `keys` and `args` in the next round trip; its reply, or its error raised."""
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Publish(keys, args, result))
        if self._sending is None or self._sending.done():  # done: cancelled before it ever ran
            self._sending = asyncio.create_task(self._send_waiting())
        return await result

    async def _send_waiting(self) -> None:
        """Send the waiting publishes, MAX_BATCH per pipelined round trip, until none is left: those made
        while a batch is on its way form the next one."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                batch = [publish for publish in batch if not publish.result.done()]  # callers gone: not sent
                if batch:
                    await self._send(batch)
        except BaseException:  # cancelled (the process is stopping): nobody may wait for ever
            waiting, self._waiting = self._waiting, []
            for publish in waiting:
                _settle(publish.result, RedisConnectionError("publishing was cancelled"))
            raise
        finally:
            self._sending = None

    async def _send(self, batch: list[_Publish], *, reloaded: bool = False) -> None:
        """One round trip for `batch`; each caller gets its own reply or error (a failed connection: all of
        them). Redis forgets scripts when it restarts (or a replica is promoted): those are then loaded again
        (on every primary of a cluster) and sent once more. On a cluster the pipeline groups the calls by node."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            for publish in batch:  # the cluster pipeline refuses pipe.evalsha, not the command itself
                pipe.execute_command("EVALSHA", self.script.sha, len(publish.keys), *publish.keys, *publish.args)
            replies = await pipe.execute(raise_on_error=False)
            again = []
            for publish, reply in zip(batch, replies, strict=True):
                if isinstance(reply, NoScriptError) and not reloaded:
                    again.append(publish)
                else:
                    _settle(publish.result, reply)
            if again:
                await self.redis.script_load(self.script.script)
                await self._send(again, reloaded=True)
        except Exception as exc:
            for publish in batch:
                _settle(publish.result, exc)
        except BaseException:  # cancelled (the process is stopping): nobody is left waiting for ever
            for publish in batch:
                _settle(publish.result, RedisConnectionError("publishing was cancelled"))
            raise
