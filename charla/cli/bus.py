"""`charla bus seal, drain`: change the bus's partition count without losing or duplicating an event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from charla.cli import common
from charla.cli.common import fail
from charla.core.bus import Bus
from charla.ops import repartition

app = typer.Typer(help="The bus's partitions: the steps of a partition-count change (docs/scaling.md).",
                  no_args_is_help=True)


@app.command("seal")
def bus_seal() -> None:
    """Seal the previous layout's partitions (CHARLA_BUS_PREVIOUS_PARTITIONS): new events go to the new ones.
    Run it once every process runs with both settings."""
    sealed = _bus(repartition.seal)
    typer.echo(f"sealed {sealed} partition(s) of the previous layout; `charla bus drain` waits for them")


@app.command("drain")
def bus_drain(
    seconds: Annotated[float, typer.Option(min=0, help="Wait at most this long for the old partitions.")] = 600,
) -> None:
    """Wait until the previous layout's partitions hold nothing unfinished; exit 1 if time runs out."""
    left = _bus(lambda bus: repartition.drain(bus, seconds))
    for topic, count in left.items():
        typer.echo(f"{topic}: {count} left")
    if any(left.values()):
        raise fail("the previous layout is not drained yet: are its consumers running?")
    typer.echo("drained: unset CHARLA_BUS_PREVIOUS_PARTITIONS once the dedupe window (CHARLA_DEDUPE_TTL_S) is over")


def _bus(work: Callable[[Bus], Awaitable[Any]]) -> Any:
    """Run `work(bus)` (common.on_bus); a partition change that is not under way is said so."""
    try:
        return common.on_bus(work)
    except repartition.NotChanging as exc:
        raise fail(str(exc)) from exc
