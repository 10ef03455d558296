"""`charla dead list, show, replay, drop`: the dead letters the bus set aside."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console

from charla.cli import common
from charla.cli.common import fail
from charla.core.bus import Bus
from charla.ops import deadletters

app = typer.Typer(help="Dead letters: poison events the bus set aside (`<stream>:dead`); inspect, replay, "
                       "drop.", no_args_is_help=True)

DeadStream = Annotated[str | None, typer.Option("--stream", help="inbound, outbox, statuses, turns, payments or "
                                                                 "voice (default: all)")]
_NO_SUCH_DEAD = "`charla dead list` shows the ids of the dead letters there are"


@app.command("list")
def dead_list(
    stream: DeadStream = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every field) instead of a table.")] = False,
) -> None:
    """List dead letters, newest first: id, stream, age, learner (hashed), deliveries, type, error."""
    letters = _dead(lambda bus: deadletters.listing(bus.redis, stream, limit))
    if as_json:
        typer.echo(json.dumps([asdict(letter) for letter in letters], indent=2, ensure_ascii=False))
    elif letters:
        wide = None if sys.stdout.isatty() else 1000  # piped: whole lines, for grep
        Console(width=wide).print(deadletters.table(letters, time.time()))
    else:
        typer.echo("no dead letters")


@app.command("show")
def dead_show(dead_id: Annotated[str, typer.Argument(metavar="ID", help="as listed by `charla dead list`")]) -> None:
    """One dead letter in full: where it came from, the event and the whole error."""
    letter = _dead(lambda bus: deadletters.find(bus.redis, dead_id))
    if letter is None:
        raise fail(f"no dead letter {dead_id}: {_NO_SUCH_DEAD}")
    typer.echo(f"id: {letter.dead_id} (dead for {deadletters.age(time.time() - letter.at)})\n"
               f"stream: {letter.stream}  group: {letter.group}  entry: {letter.entry_id}  seq: {letter.seq}\n"
               f"learner: {letter.learner}  consumer: {letter.consumer}  deliveries: {letter.deliveries}\n"
               f"event ({letter.event_type}):\n{json.dumps(letter.event, indent=2, ensure_ascii=False)}\n"
               f"error:\n{letter.error}")


@app.command("replay")
def dead_replay(
    dead_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="as listed by `charla dead list`")] = None,
    every: Annotated[bool, typer.Option("--all", help="Replay every dead letter (of --stream), oldest first.")] = False,
    stream: DeadStream = None,
) -> None:
    """Publish a dead letter's event again on its stream (its consumers handle it anew) and delete it."""
    if (dead_id is None) != every or (stream and not every):
        raise fail("give one dead-letter ID, or --all [--stream NAME]; " + _NO_SUCH_DEAD)
    try:
        if every:
            count = _dead(lambda bus: deadletters.replay_all(bus, stream))
            typer.echo(f"replayed {count} dead letter(s); any left could not be: see `charla dead list`")
            return
        typer.echo(f"replayed {dead_id} as {_dead(lambda bus: deadletters.replay(bus, dead_id or ''))}")
    except deadletters.AlreadyReplayed as exc:
        typer.echo(f"{exc}; removed the leftover dead letter")
    except deadletters.NotFound as exc:
        raise fail(f"{exc}: {_NO_SUCH_DEAD}") from exc
    except deadletters.NotReplayable as exc:
        raise fail(f"{exc} (`charla dead drop {dead_id}` deletes it)") from exc


@app.command("drop")
def dead_drop(dead_id: Annotated[str, typer.Argument(metavar="ID", help="as listed by `charla dead list`")]) -> None:
    """Delete a dead letter for good (its event is not handled)."""
    if not _dead(lambda bus: deadletters.drop(bus.redis, dead_id)):
        raise fail(f"no dead letter {dead_id}: {_NO_SUCH_DEAD}")
    typer.echo(f"dropped {dead_id}")


def _dead(work: Callable[[Bus], Awaitable[Any]]) -> Any:
    """Run `work(bus)` (common.on_bus); an unknown stream is said so."""
    try:
        return common.on_bus(work)
    except deadletters.UnknownStream as exc:
        raise fail(str(exc)) from exc
