"""Fixtures: real PostgreSQL (embedded, with pgvector) and real Redis servers, started once per test session.

The bus contract suite runs against every redis-server found (tests.support.helpers.REDIS_SERVERS) and a local
Redis Cluster (tests.support.redis_cluster). Helpers
that tests and the benchmarks import live in tests/support, not here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import psycopg
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from charla.cli.postgres import EmbeddedPostgres
from charla.cli.redis_server import EmbeddedRedis
from charla.cli.services import free_port
from charla.core.db import migrate
from tests.support.helpers import REDIS_SERVERS
from tests.support.redis_cluster import LocalCluster, cluster_binaries, local_cluster

# Where the bus contract suite runs: every redis-server found, and a local Redis Cluster when the system's
# redis-server and redis-cli are installed (3 primaries + 3 replicas, tests.support.redis_cluster).
BUS_TARGETS = [*sorted(REDIS_SERVERS), *(["cluster"] if cluster_binaries() else [])]

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
def redis_server_redis6(home: Path) -> Iterator[str]:
    yield from _run_redis(home / "bus-redis6", REDIS_SERVERS["redis6"])


@pytest.fixture(scope="session")
def redis_server_redis7(home: Path) -> Iterator[str]:
    yield from _run_redis(home / "bus-redis7", REDIS_SERVERS["redis7"])


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


@pytest.fixture(scope="session")
def redis_cluster(home: Path) -> Iterator[LocalCluster]:
    """A local Redis Cluster (3 primaries, 3 replicas), started once per test session."""
    with local_cluster(home / "redis-cluster") as cluster:
        yield cluster


@pytest.fixture(params=BUS_TARGETS)
async def bus_redis(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """An emptied client of each bus target in turn: one per redis-server version, and the cluster's
    (a RedisCluster, typed as Redis: the bus takes either)."""
    if request.param != "cluster":
        async for client in _flushed(request.getfixturevalue("redis_server_" + str(request.param))):
            yield client
        return
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    node = RedisCluster.from_url(cluster.url)
    await node.flushdb(target_nodes=RedisCluster.PRIMARIES)
    try:
        yield cast(Redis, node)
    finally:
        await node.aclose()
