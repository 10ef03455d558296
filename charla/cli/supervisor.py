"""`charla up`'s process supervisor: one OS process per agent plus the orchestrator.

A crashed child is restarted with exponential backoff (reset once it has run for a while); `charla
restart NAME` arrives over Redis pub/sub and gracefully restarts one child; SIGINT/SIGTERM stop all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.bus import listen

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 30.0  # a child that ran this long before crashing restarts without backoff
STOP_TIMEOUT_S = 40.0  # longer than a worker's 30 s drain, so a graceful stop is never cut short


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    restart_requested: bool = False
    backoff: float = BACKOFF_START_S
    last_exit: int | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def describe(self) -> dict[str, object]:
        running = self.proc is not None and self.proc.returncode is None
        return {"pid": self.proc.pid if running and self.proc else None, "state": "running" if running else "down",
                "started": self.started, "restarts": self.restarts, "last_exit": self.last_exit}


def child_argv(name: str) -> list[str]:
    """How the supervisor starts a child: the same interpreter, the same CLI."""
    if name == "orchestrator":
        return [sys.executable, "-m", "charla", "serve"]
    return [sys.executable, "-m", "charla", "agent", name]


class Supervisor:
    def __init__(self, redis: Redis, names: Sequence[str], env: Mapping[str, str]) -> None:
        self.redis = redis
        self.children = {name: Child(name, child_argv(name), {**env, "CHARLA_CONSUMER": f"{name}-1"})
                         for name in names}
        self._stopping = False
        self._requests: set[asyncio.Task[bool]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every child until `stop` is set, then stop them all gracefully."""
        await self.redis.delete(c.PROCS_KEY)
        tasks = [asyncio.create_task(self._keep_running(child)) for child in self.children.values()]
        closing = asyncio.Event()
        control = asyncio.create_task(listen(self.redis, c.CONTROL_CHANNEL, closing, self._on_control))
        try:
            await stop.wait()
        finally:
            self._stopping = True
            closing.set()
            await asyncio.gather(*(self._terminate(ch) for ch in self.children.values()))
            for ch in self.children.values():
                ch.wake.set()
            await asyncio.gather(*tasks, control, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.redis.delete(c.PROCS_KEY)

    async def restart(self, name: str) -> bool:
        """Gracefully restart one child (SIGTERM, then start it again at once)."""
        child = self.children.get(name)
        if child is None:
            log.warning("restart requested for unknown process %r", name)
            return False
        child.restart_requested = True
        await self._terminate(child)
        return True

    async def _keep_running(self, child: Child) -> None:
        while not self._stopping:
            await self._start(child)
            assert child.proc is not None
            child.last_exit = await child.proc.wait()
            await self._publish_state(child)
            if self._stopping:
                return
            if child.restart_requested:
                child.restart_requested = False
                log.info("%s restarted on request", child.name)
                continue
            await self._backoff(child)

    async def _backoff(self, child: Child) -> None:
        ran = time.monotonic() - child.started
        if ran > STABLE_AFTER_S:
            child.backoff = BACKOFF_START_S
        log.error("%s exited with %s after %.1fs; restarting in %.0fs", child.name, child.last_exit, ran,
                  child.backoff)
        child.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wake.wait(), child.backoff)
        child.backoff = min(child.backoff * 2, BACKOFF_MAX_S)

    async def _start(self, child: Child) -> None:
        child.proc = await asyncio.create_subprocess_exec(*child.argv, env=dict(child.env),
                                                          stdin=asyncio.subprocess.DEVNULL)
        child.started = time.monotonic()
        child.restarts += 1 if child.last_exit is not None else 0
        log.info("started %s (pid %s)", child.name, child.proc.pid)
        await self._publish_state(child)

    async def _terminate(self, child: Child) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_TIMEOUT_S)
        except TimeoutError:
            log.error("%s did not stop within %.0fs; killing it", child.name, STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _publish_state(self, child: Child) -> None:
        with contextlib.suppress(Exception):
            await self.redis.hset(c.PROCS_KEY, child.name,
                                  json.dumps({**child.describe(), "supervisor_pid": os.getpid()}))

    def _on_control(self, command: str) -> None:
        verb, _, name = command.partition(" ")
        if verb == "restart":
            task = asyncio.create_task(self.restart(name))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)
