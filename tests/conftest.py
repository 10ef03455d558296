"""Fixtures: real PostgreSQL (embedded, with pgvector) and real Redis servers, started once per test session.

The bus contract suite runs against every redis-server found (tests.support.helpers.REDIS_SERVERS). Helpers
that tests and the benchmarks import live in tests/support, not here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from redis.asyncio import Redis

from charla.cli.postgres import EmbeddedPostgres
from charla.cli.redis_server import EmbeddedRedis
from charla.cli.services import free_port
from charla.core.db import migrate
from tests.support.helpers import REDIS_SERVERS

TABLES = ("learners, profiles, messages, payments, schedules, memories, message_statuses, outbound_parts, "
          "stripe_events, erased_quota, audit_log")


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
