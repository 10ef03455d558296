"""The benchmark's own PostgreSQL and Redis: embedded servers on free ports under a fresh temp dir."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from redis.asyncio import Redis

from bench.load import CpuMeter, loadavg, progress
from charla.cli.postgres import EmbeddedPostgres
from charla.cli.redis_server import EmbeddedRedis, redis_server_binary
from charla.cli.services import free_port
from charla.core.db import migrate


@dataclass(frozen=True)
class Services:
    """URLs of the running servers and the temp dir they live in (also CHARLA_HOME of the stack)."""

    root: Path
    database_url: str
    redis_url: str
    redis_binary: str
    postgres: EmbeddedPostgres | None = None  # the servers themselves, for the runs that restart them
    redis_server: EmbeddedRedis | None = None


@contextlib.contextmanager
def started_services() -> Iterator[Services]:
    """Start embedded PostgreSQL and Redis under a new temp dir; stop them and remove it on exit."""
    # As root PostgreSQL runs as the unprivileged `postgres` user, who must be able to enter the dir.
    root = Path(tempfile.mkdtemp(prefix="charla-bench-"))
    root.chmod(0o755)
    binary = redis_server_binary()
    pg = EmbeddedPostgres(root / "postgres", free_port(), progress)
    rs = EmbeddedRedis(root / "redis", free_port(), binary, progress)
    try:
        pg.start()
        rs.start()
        yield Services(root, pg.url, rs.url, binary, pg, rs)
    finally:
        rs.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class RedisUsage:
    """Redis server CPU seconds (user + sys) and commands processed (Lua-internal calls included) so far."""

    cpu_s: float
    commands: int

    @classmethod
    async def read(cls, redis: Redis) -> RedisUsage:
        """The server's figures right now (INFO cpu, INFO stats)."""
        cpu, stats = await redis.info("cpu"), await redis.info("stats")
        return cls(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), int(stats["total_commands_processed"]))


@dataclass(frozen=True)
class UsageMeter:
    """CPU of named processes, the machine and redis-server, and Redis commands, over a measured window."""

    redis: Redis
    cpu: CpuMeter
    start: RedisUsage

    @classmethod
    async def begin(cls, redis: Redis, pids: dict[str, int]) -> UsageMeter:
        """Start metering now."""
        return cls(redis, CpuMeter(pids), await RedisUsage.read(redis))

    async def end(self, events: int) -> dict[str, object]:
        """CPU shares of one core (redis-server included) and Redis commands per event since `begin`."""
        shares, used = self.cpu.shares(), self.cpu.seconds()
        now = await RedisUsage.read(self.redis)
        seconds = time.perf_counter() - self.cpu.started
        return {"cpu_share_of_one_core": {**shares, "redis-server": round((now.cpu_s - self.start.cpu_s) / seconds, 2)},
                "redis_commands_per_event": round((now.commands - self.start.commands) / events, 1),
                "cpu_seconds": {**used, "redis-server": now.cpu_s - self.start.cpu_s}}


async def prepare(services: Services) -> None:
    """Apply the schema migrations to the benchmark database."""
    applied = await migrate(services.database_url)
    progress(f"applied {len(applied)} migration(s)")


async def machine_info(services: Services) -> dict[str, object]:
    """CPU count, load, Python, OS and the versions of the servers under test."""
    redis = Redis.from_url(services.redis_url)
    try:
        server = await redis.info("server")
    finally:
        await redis.aclose()
    async with await psycopg.AsyncConnection.connect(services.database_url) as conn:
        row = await (await conn.execute("SELECT version()")).fetchone()
    return {"cpu_count": os.cpu_count(), "loadavg_at_start": loadavg(),
            "python": sys.version.split()[0], "python_implementation": platform.python_implementation(),
            "platform": platform.platform(), "redis_server_version": str(server.get("redis_version")),
            "redis_server_binary": services.redis_binary,
            "postgresql_version": str(row[0]) if row else None}
