"""`charla block, unblock, blocked, say`: act on learners, and talk to the stack as one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from redis.asyncio import Redis

from charla.channels.console import console_channel, learner_key, signature, text_delivery
from charla.channels.registry import local_console
from charla.cli import common
from charla.cli.common import fail, run, with_redis
from charla.core.events import OutboundMessage, decode_event
from charla.core.settings import Settings
from payments import entitlements

app = typer.Typer()


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
    keys = run(with_redis(lambda redis: entitlements.blocked(redis)))
    typer.echo("\n".join(keys) if keys else "nobody is blocked")


def _blocklist(learner: str, *, add: bool) -> None:
    key = entitlements.learner_key(learner)
    change = entitlements.block if add else entitlements.unblock
    changed = run(with_redis(lambda redis: change(redis, key)))
    verb = "blocked" if add else "unblocked"
    typer.echo(f"{key} {verb}" if changed else f"{key} was already {verb}")


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="What the learner writes.")],
    learner: Annotated[str, typer.Option(help="Console learner handle.")] = "demo",
    wait: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 60.0,
) -> None:
    """Write to the running stack as a console learner (WHATSAPP_PROVIDER=console) and print the reply."""
    settings = common.settings()
    if not local_console(settings):
        raise fail(f"`charla say` talks to the console provider; this stack uses {settings.whatsapp_provider}")
    try:
        reply = run(_say(settings, text, learner, wait))
    except TimeoutError as exc:
        raise fail(f"no reply within {wait:.0f}s: is every agent running? see `charla status`") from exc
    typer.echo(reply)


async def _say(settings: Settings, text: str, handle: str, wait: float) -> str:
    secret = settings.whatsapp_secret()
    if secret is None:
        raise fail("no secret to sign the console's deliveries with (set WHATSAPP_APP_SECRET)")
    redis = Redis.from_url(common.urls(settings).redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(console_channel(learner_key(handle)))
        await _deliver(settings, text_delivery(handle, text), secret)
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


async def _deliver(settings: Settings, body: bytes, secret: str) -> None:
    """POST a signed console delivery to the orchestrator's webhook, as a provider would."""
    # httpx is imported when used, so that `charla --help` starts fast.
    import httpx

    async with httpx.AsyncClient(base_url=settings.local_url) as http:
        try:
            sent = await http.post("/webhooks/whatsapp", content=body, headers={
                "x-hub-signature-256": signature(body, secret), "content-type": "application/json"})
        except httpx.TransportError as exc:
            raise fail(f"cannot reach the orchestrator at {http.base_url}: is `charla up` running?") from exc
    if sent.is_error:
        raise fail(f"the orchestrator answered {sent.status_code}: {sent.text}")


def _reply_text(message: dict[str, Any] | None) -> list[str]:
    event = decode_event(message["data"]) if message else None  # replies and read receipts
    return [event.text] if isinstance(event, OutboundMessage) else []
