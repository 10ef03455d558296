"""What every `charla` verb shares: settings loading, progress lines, errors, running a coroutine, Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError

from charla.core import logs
from charla.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from charla.core.bus import Bus
    from charla.core.runtime import Urls


def settings(process: str | None = None) -> Settings:
    """The settings, with logging configured from them (redacted; `process` names the lines)."""
    try:
        loaded = load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "configuration"
            typer.secho(f"error: {where}: {error['msg'].removeprefix('Value error, ')}", err=True, fg="red")
        raise typer.Exit(2) from exc
    logs.configure(loaded, process=process)
    return loaded


def progress(message: str) -> None:
    """One progress line on stderr."""
    typer.secho(f"▸ {message}", err=True, fg="cyan")


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` to completion on uvloop (asyncio's own loop when uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def fail(message: str) -> typer.Exit:
    """Print `message` as an error; the caller raises the returned exit (status 1)."""
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(1)


def urls(loaded: Settings) -> Urls:
    """The stack's database and Redis URLs, or an error saying how to start a stack."""
    # The runtime (aiohttp, Prometheus) is imported when used, so that `charla --help` starts fast.
    from charla.core.runtime import NotConfigured, resolve_urls

    try:
        return resolve_urls(loaded)
    except NotConfigured as exc:
        raise fail(str(exc)) from exc


async def with_redis(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(redis)` against the stack's Redis."""
    from charla.core.redis_client import connect

    loaded = settings()
    redis = connect(urls(loaded).redis_url, cluster=loaded.redis_cluster, max_connections=8)
    try:
        return await work(redis)
    finally:
        await redis.aclose()


def on_bus(work: Callable[[Bus], Awaitable[Any]]) -> Any:
    """Run `work(bus)` against the stack's Redis, cluster or not (REDIS_URL is enough: no PostgreSQL). A Redis
    error ends the command with what to check; any other error is the caller's."""
    # The runtime (aiohttp, Prometheus) is imported when used, so that `charla --help` starts fast.
    from redis.exceptions import RedisError

    from charla.core.bus import Bus
    from charla.core.redis_client import connect
    from charla.core.runtime import bus_config

    loaded = settings()

    async def go(url: str) -> Any:
        redis = connect(url, cluster=loaded.redis_cluster, max_connections=8)
        try:
            return await work(Bus(redis, bus_config(loaded)))
        finally:
            await redis.aclose()

    try:
        return run(go(loaded.redis_url or urls(loaded).redis_url))
    except RedisError as exc:
        raise fail(f"Redis: {exc}; is the stack running (`charla status`)?") from exc
