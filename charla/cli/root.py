"""The `charla` command line: the Typer app and its verb groups, one module each."""

from __future__ import annotations

import typer

from charla.cli import broadcast, bus, check, dead, learners, setup, stack, voice

app = typer.Typer(help="Charla: a self-hosted AI language tutor on WhatsApp.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
app.add_typer(stack.app)
app.add_typer(setup.app)
app.add_typer(learners.app)
app.add_typer(voice.app, name="voice")
app.add_typer(dead.app, name="dead")
app.add_typer(broadcast.app, name="broadcast")
app.add_typer(bus.app, name="bus")
app.add_typer(check.app)


def main() -> None:
    """The `charla` entry point (and `python -m charla`)."""
    app()
