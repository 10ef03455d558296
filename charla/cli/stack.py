"""`charla up, serve, agent, migrate, restart, alive, status`: run the stack or one of its processes, and
look after them."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Annotated

import typer

from charla.channels.registry import local_console
from charla.cli import common
from charla.cli.common import fail, progress, run
from charla.cli.embedded import running_services
from charla.cli.services import ServiceError, write_private
from charla.cli.supervisor import Supervisor
from charla.core import constants as c
from charla.core import db
from charla.core.liveness import LIVE_BEATS, Beat, beats, fresh_beat, verdict
from charla.core.redis_client import ERRORS, connect, text
from charla.core.settings import Settings

app = typer.Typer()


@app.command()
def up(
    agents: Annotated[str, typer.Option(help="Comma-separated agents to run (default: all available).")] = "",
) -> None:
    """Run the whole stack: embedded PostgreSQL and Redis (unless DATABASE_URL/REDIS_URL are set),
    migrations, the orchestrator and every agent, supervised. Ctrl-C stops everything."""
    # The agents, the orchestrator, uvicorn and the runtime are imported by the verbs that use them, so that
    # `charla --help` starts fast.
    from agents.registry import AGENTS

    settings = common.settings("supervisor")
    if not (settings.groq_api_key or settings.anthropic_api_key or settings.openai_base_url):
        progress("no model key set: offline mode (checker corrections and follow-up questions, no real "
                 "conversation); run `charla setup` to add a Groq key (free tier) for the full tutor")
    names = [n for n in agents.split(",") if n] or list(AGENTS)
    unknown = [n for n in names if n not in AGENTS]
    if unknown:
        raise fail(f"unknown agent(s) {', '.join(unknown)}; available: {', '.join(AGENTS)}")
    try:
        run(_up(settings, names))
    except ServiceError as exc:
        raise fail(str(exc)) from exc


async def _up(settings: Settings, names: list[str]) -> None:
    from charla.core.runtime import stack_file, stop_on_signals

    stop = stop_on_signals()
    with running_services(settings.home, database_url=settings.database_url, redis_url=settings.redis_url,
                          pg_port=settings.embedded_pg_port, redis_port=settings.embedded_redis_port,
                          redis_binary=settings.redis_server, progress=progress) as urls:
        for name in await db.migrate(urls.database_url, progress):
            progress(f"applied {name}")
        path = stack_file(settings)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        # The URLs carry the services' passwords: readable by this user only.
        write_private(path, json.dumps({"database_url": urls.database_url, "redis_url": urls.redis_url,
                                        "pid": os.getpid()}))
        env = {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        redis = connect(urls.redis_url, cluster=settings.redis_cluster, max_connections=8)
        progress(f"orchestrator on http://{settings.host}:{settings.port} "
                 f"(provider: {settings.whatsapp_provider}); agents: {', '.join(names)}")
        if local_console(settings):
            progress(f"console: {settings.local_url}/console  ·  dashboard: {settings.local_url}/admin")
        try:
            await Supervisor(redis, ["orchestrator", *names], env).run(stop)
        finally:
            path.unlink(missing_ok=True)
            await redis.aclose()
            progress("stack stopped")


@app.command()
def serve() -> None:
    """Run only the webhook orchestrator (uvicorn, uvloop + httptools) on CHARLA_HOST:CHARLA_PORT."""
    import uvicorn

    from orchestrator.app import create_app

    settings = common.settings("orchestrator")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                access_log=False, log_level=settings.log_level.lower(), log_config=None,
                timeout_graceful_shutdown=10)


@app.command()
def agent(name: Annotated[str, typer.Argument(help="conversation, memory, payments, scheduler, voice or "
                                                   "sender")]) -> None:
    """Run one agent process (consumes its stream until SIGTERM/SIGINT, then finishes in-flight work)."""
    from agents.registry import AGENTS

    settings = common.settings(name)
    if name not in AGENTS:
        raise fail(f"unknown agent {name!r}; available: {', '.join(AGENTS)}")
    run(_agent(settings, name))


async def _agent(settings: Settings, name: str) -> None:
    from agents.registry import AGENTS
    from charla.core.runtime import open_resources, run_workers, stop_on_signals

    spec = AGENTS[name]
    stop = stop_on_signals()
    async with open_resources(settings) as res:
        handlers = spec.handlers(res)
        await run_workers(res, agent=name, handlers=handlers, stop=stop, concurrency=spec.concurrency(settings))


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations from schema/ (idempotent; safe to run concurrently)."""
    settings = common.settings()
    try:
        applied = run(db.migrate(common.urls(settings).database_url, progress))
    except db.MigrationError as exc:
        raise fail(str(exc)) from exc
    progress(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")


def _process_name(name: str) -> str:
    """`charla restart`'s NAME: the orchestrator or an agent (a typo is an error, not a silent no-op)."""
    from agents.registry import AGENTS

    valid = ["orchestrator", *AGENTS]
    if name not in valid:
        raise typer.BadParameter(f"unknown process {name!r}; valid names: {', '.join(valid)}")
    return name


@app.command()
def restart(
    name: Annotated[str, typer.Argument(help="orchestrator or an agent name", callback=_process_name)],
    wait: Annotated[bool, typer.Option(help="Wait until the new process writes its first heartbeat.")] = True,
    timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait for that heartbeat.")] = 60.0,
) -> None:
    """Gracefully restart one process of a running `charla up` (no message is lost); unless --no-wait, wait for
    the new process's heartbeat and exit 1 if it does not come within --timeout seconds."""
    settings = common.settings()
    run(_restart(common.urls(settings).redis_url, settings.redis_cluster, name, timeout if wait else None))


async def _restart(redis_url: str, cluster: bool, name: str, wait_s: float | None) -> None:
    redis = connect(redis_url, cluster=cluster, max_connections=8)
    try:
        running = sorted(text(key) for key in await redis.hkeys(c.PROCS_KEY))
        if running and name not in running:
            raise fail(f"{name} is not run by this `charla up` (it runs: {', '.join(running)})")
        old = {beat.process for beat in await beats(redis, name, time.time())}
        if not await redis.publish(c.CONTROL_CHANNEL, f"restart {name}"):
            raise fail("no running `charla up` listens on this Redis; under compose use "
                       f"`docker compose restart {name}`")
        progress(f"restart of {name} requested")
        if wait_s is None:
            return
        progress(f"waiting up to {wait_s:g}s for a heartbeat from a new {name} process")
        beat = await fresh_beat(redis, name, old, wait_s)
    finally:
        await redis.aclose()
    if beat is None:
        raise fail(f"no heartbeat from a new {name} process within {wait_s:g}s: see `charla status` and the "
                   "`charla up` log")
    progress(f"{name} is back: pid {beat.pid} on {beat.host}")


@app.command()
def alive(name: Annotated[str, typer.Argument(help="an agent name (see `charla agent --help`) or orchestrator")]
          ) -> None:
    """Exit 0 when a process NAME on this host wrote its heartbeat within 3 x CHARLA_HEARTBEAT_S, else say
    why and exit 1: the container health check of agents, which serve no HTTP."""
    from charla.core.runtime import NotConfigured, resolve_urls

    settings = common.settings()
    try:
        found = run(_beats(resolve_urls(settings).redis_url, settings.redis_cluster, name))
    except (NotConfigured, *ERRORS, OSError) as exc:
        raise fail(f"cannot read heartbeats: {exc}") from exc
    problem = verdict(found, name, socket.gethostname(), LIVE_BEATS * settings.heartbeat_s)
    if problem:
        raise fail(problem)
    typer.echo(f"{name} is alive on {socket.gethostname()}")


async def _beats(redis_url: str, cluster: bool, name: str) -> list[Beat]:
    redis = connect(redis_url, cluster=cluster, max_connections=2, timeout_s=3)
    try:
        return await beats(redis, name, time.time())
    finally:
        await redis.aclose()


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    clear_alerts: Annotated[bool, typer.Option("--clear-alerts", help="Forget the operator alerts shown.")] = False,
) -> None:
    """Processes, their last heartbeat, per stream: length, pending, consumer lag, dead letters; alerts."""
    from charla.core.runtime import NotConfigured
    from charla.ops.status import clear_alerts as clear
    from charla.ops.status import collect, render

    settings = common.settings()
    if clear_alerts:
        run(clear(settings))
    try:
        report = run(collect(settings))
    except NotConfigured as exc:
        raise fail(str(exc)) from exc
    typer.echo(json.dumps(report, indent=2, default=str) if as_json else render(report, time.time()))
