"""`charla broadcast send, list, show, cancel`: operator notices to a segment of learners."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import psycopg
import typer

from charla.cli import common
from charla.cli.common import fail, run, with_redis
from charla.core.events import Template
from charla.ops import broadcasts
from charla.store.profile import CEFR
from payments import entitlements

app = typer.Typer(help="Operator broadcasts to a segment of learners, paced by the scheduler agent.",
                  no_args_is_help=True)


@app.command("send")
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
    settings = common.settings()
    if level and level.upper() not in CEFR:
        raise fail(f"--level {level}: use one of {', '.join(CEFR)}")
    segment = broadcasts.Segment(language=language, level=level.upper() if level else None, paid=paid)
    blocked = run(with_redis(lambda redis: entitlements.blocked(redis)))
    options: dict[str, Any] = {"default_language": settings.default_target_language, "blocked": blocked}
    count = _broadcast_db(lambda conn: broadcasts.audience(conn, segment, **options))
    typer.echo(f"{count} learner(s) match: {segment.describe()}")
    if count == 0:
        raise fail("nobody to send to; nothing was queued")
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


@app.command("list")
def broadcast_list(limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50) -> None:
    """The latest broadcasts, newest first, with recipients and delivery counts."""
    found = _broadcast_db(lambda conn: broadcasts.listing(conn, limit))
    typer.echo("\n".join(broadcasts.line(s) for s in found) if found else "no broadcasts yet")


@app.command("show")
def broadcast_show(broadcast_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """One broadcast: its segment, text, recipients (pending, queued, skipped and why) and delivery counts."""
    try:
        typer.echo(broadcasts.render(_broadcast_db(lambda conn: broadcasts.summary(conn, broadcast_id))))
    except broadcasts.UnknownBroadcast as exc:
        raise fail(f"{exc}: `charla broadcast list` shows them") from exc


@app.command("cancel")
def broadcast_cancel(broadcast_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Stop a broadcast: nobody else gets it (messages already handed to WhatsApp cannot be recalled)."""
    if not _broadcast_db(lambda conn: broadcasts.cancel(conn, broadcast_id)):
        raise fail(f"broadcast {broadcast_id} is not sending (unknown, done or already cancelled)")
    typer.echo(f"broadcast {broadcast_id} cancelled")


def _broadcast_db(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(conn)` on one PostgreSQL connection to the stack's database."""

    async def _go(url: str) -> Any:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await work(conn)

    try:
        return run(_go(common.urls(common.settings()).database_url))
    except psycopg.OperationalError as exc:
        raise fail(f"PostgreSQL: {exc}; is the stack running (`charla status`)?") from exc
