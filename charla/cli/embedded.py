"""The embedded servers together: URLs for the stack, starting PostgreSQL and Redis for whichever is unset."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charla.cli.postgres import EmbeddedPostgres
from charla.cli.redis_server import EmbeddedRedis, redis_server_binary
from charla.cli.services import Progress, quiet


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def running_services(home: Path, *, database_url: str | None, redis_url: str | None, pg_port: int,
                     redis_port: int, redis_binary: str | None = None,
                     progress: Progress = quiet) -> Iterator[ServiceUrls]:
    """Yield usable URLs, starting embedded servers for whichever URL is unset; stop them on exit."""
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if database_url is None:
            pg = EmbeddedPostgres(home.resolve() / "postgres", pg_port, progress)
            pg.start()
            started.append(pg)
            database_url = pg.url
        if redis_url is None:
            rs = EmbeddedRedis(home.resolve() / "redis", redis_port, redis_server_binary(redis_binary), progress)
            rs.start()
            started.append(rs)
            redis_url = rs.url
        yield ServiceUrls(database_url, redis_url)
    finally:
        for service in reversed(started):
            service.stop()
