"""`charla check`: the deterministic learner-error checker on a text or on stdin, offline (no model, no services).

Exit status: 0 when nothing was found, 1 when at least one error was found, 2 for a usage error."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

from charla.tutor.checker.base import Finding, check
from charla.tutor.checker.render import explain

app = typer.Typer()


class Lang(StrEnum):
    """Target languages with a checker."""

    es = "es"
    en = "en"


@app.command(name="check")
def check_command(
    text: Annotated[str | None, typer.Argument(help="the text to check; without it, one sentence per stdin line")]
    = None,
    lang: Annotated[Lang, typer.Option("--lang", help="the language the text is written in")] = Lang.es,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON array of corrections per line")] = False,
    explain_in: Annotated[str, typer.Option("--explain-in", help="language of the explanations")] = "en",
) -> None:
    """Check learner sentences: each error as written, its correction, its category and why."""
    found_any = False
    for line in [text] if text is not None else sys.stdin:
        findings = check(line.rstrip("\n"), lang.value)
        found_any |= bool(findings)
        typer.echo(render_json(findings, explain_in) if as_json else render_text(findings, explain_in))
        sys.stdout.flush()
    raise typer.Exit(1 if found_any else 0)


def corrections(findings: list[Finding], explain_in: str) -> list[dict[str, str]]:
    """The tutor's Correction shape of each finding."""
    return [{"original": f.original, "corrected": f.corrected, "category": f.category,
             "explanation": explain(f, explain_in)} for f in findings]


def render_json(findings: list[Finding], explain_in: str) -> str:
    return json.dumps(corrections(findings, explain_in), ensure_ascii=False)


def render_text(findings: list[Finding], explain_in: str) -> str:
    if not findings:
        return "✓"
    return "; ".join(f"~{f.original}~ → {f.corrected} ({explain(f, explain_in)})" for f in findings)
