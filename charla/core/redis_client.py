"""The Redis client a process talks to: one server (`redis.asyncio.Redis`) or a Redis Cluster
(`redis.asyncio.cluster.RedisCluster`, REDIS_URL naming any one node) when CHARLA_REDIS_CLUSTER is on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

AnyRedis = Redis | RedisCluster
# What a command can raise on either client: redis-py's cluster errors (no node reachable, keys of one command in
# different slots) do not derive from RedisError.
ERRORS = (RedisError, RedisClusterException)


def text(value: bytes | str) -> str:
    """A reply decoded (the clients do not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str, *, cluster: bool, max_connections: int, timeout_s: float | None = None) -> Redis:
    """A client for `url`: a blocking pool on one server (under a burst, tasks wait for a free connection
    instead of failing), or a cluster client with as many connections per node. Typed as Redis for the
    app's commands, which touch one key each (or one slot: see `get_each`) and which RedisCluster offers
    alike, routing each to its slot's node; the bus, which needs to know, takes either (AnyRedis).
    `timeout_s` bounds connecting and each reply (a health check must not hang)."""
    timeouts = {} if timeout_s is None else {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    if cluster:
        return cast(Redis, RedisCluster.from_url(url, max_connections=max_connections, socket_keepalive=True,
                                                 health_check_interval=30, **timeouts))
    return Redis.from_pool(BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=20, health_check_interval=30, socket_keepalive=True,
        **timeouts))


async def get_each(redis: Redis, keys: Sequence[bytes | str]) -> list[Any]:
    """GET of independent keys in one round trip (one per node on a cluster), None for a missing one. Not
    MGET: a cluster refuses one over keys of different slots (CROSSSLOT), and these need no snapshot."""
    if not keys:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)
