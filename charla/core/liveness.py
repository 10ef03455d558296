"""Is a process alive on this host? Read from the heartbeat keys agents and the orchestrator refresh
(charla/core/runtime.py heartbeat()); `charla alive NAME`, the compose health check of processes without HTTP, and
`charla restart NAME`, which waits for the restarted process's first beat."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection
from dataclasses import dataclass

from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.redis_client import get_each

LIVE_BEATS = 3  # a process is alive while its last beat is younger than this many heartbeat periods


@dataclass(frozen=True)
class Beat:
    """One process's last heartbeat: who wrote it, where, and how long ago."""

    consumer: str
    host: str
    age_s: float
    pid: int | None = None

    @property
    def process(self) -> tuple[str, int | None]:
        """Which OS process wrote it (a restarted process has a new pid)."""
        return self.host, self.pid


async def beats(redis: Redis, name: str, now: float) -> list[Beat]:
    """Every heartbeat of agent `name`'s processes, aged at `now` (bodies without host or time skipped)."""
    keys = [key async for key in redis.scan_iter(match=c.HEARTBEAT_KEY.format(agent=name, consumer="*"),
                                                 count=200)]
    bodies = await get_each(redis, keys)  # each process's key is in a slot of its own on a cluster
    return [beat for body in bodies if body is not None and (beat := parse_beat(body, name, now)) is not None]


def parse_beat(raw: bytes | str, name: str, now: float) -> Beat | None:
    """A heartbeat body (JSON: agent, consumer, pid, host, at, …) read tolerantly; None when unusable."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("agent") != name:
        return None
    host, at = body.get("host"), body.get("at")
    if not isinstance(host, str) or not isinstance(at, int | float):
        return None
    pid = body.get("pid")
    return Beat(str(body.get("consumer", "?")), host, now - float(at), pid if isinstance(pid, int) else None)


async def fresh_beat(redis: Redis, name: str, old: Collection[tuple[str, int | None]], timeout_s: float,
                     poll_s: float = 0.2) -> Beat | None:
    """The first heartbeat of `name` written by a process not in `old` (host, pid), within `timeout_s`; None
    if none came (`charla restart` waiting for the new process)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [beat for beat in await beats(redis, name, time.time()) if beat.process not in old]
        if found:
            return min(found, key=lambda beat: beat.age_s)
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(poll_s)


def verdict(found: list[Beat], name: str, host: str, max_age_s: float) -> str | None:
    """None when a beat from `host` is younger than `max_age_s`, else what the operator should know."""
    here = [beat for beat in found if beat.host == host]
    if any(beat.age_s < max_age_s for beat in here):
        return None
    if here:
        youngest = min(beat.age_s for beat in here)
        return (f"{name} on {host} last beat {youngest:.1f}s ago (alive means under {max_age_s:g}s): "
                "the process is stuck or its event loop is blocked")
    if found:
        others = ", ".join(sorted({beat.host for beat in found}))
        return f"no heartbeat from {name} on this host ({host}); only from: {others}"
    return (f"no heartbeat from {name} on any host: it is not running, still starting, or was stopped "
            f"for over {max_age_s:g}s")
