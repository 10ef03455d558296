"""The Redis client a process talks to: one server (`redis.asyncio.Redis`) or a Redis Cluster
(`redis.asyncio.cluster.RedisCluster`, REDIS_URL naming any one node) when CHARLA_REDIS_CLUSTER is on."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

AnyRedis = Redis | RedisCluster


def text(value: bytes | str) -> str:
    """A reply decoded (the clients do not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str, *, cluster: bool, max_connections: int) -> Redis:
    """A client for `url`: a blocking pool on one server (under a burst, tasks wait for a free connection
    instead of failing), or a cluster client with as many connections per node. Typed as Redis for the
    app's single-key commands, which RedisCluster offers alike (routing each to its slot's node); the bus,
    which needs to know, takes either (AnyRedis)."""
    if cluster:
        return cast(Redis, RedisCluster.from_url(url, max_connections=max_connections, socket_keepalive=True,
                                                 health_check_interval=30))
    return Redis.from_pool(BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=20, health_check_interval=30, socket_keepalive=True))


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)
