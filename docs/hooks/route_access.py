"""mkdocs hook: who may call each route, rendered from orchestrator.access.RULES at build time.

A page that contains the marker `<!-- route-access -->` gets, in its place, the access policy table, so the
security page cannot drift from what tests/orchestrator/test_route_audit.py enforces.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- route-access -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker with the table (mkdocs calls this for every page)."""
    if MARKER not in markdown:
        return markdown
    root = str(Path(config["config_file_path"]).parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from orchestrator.access import RULES  # the checkout's own policy table

    rows = ["| path (and below) | methods | policy | who may call it |", "|---|---|---|---|"]
    rows += [f"| `{rule.prefix}` | {' '.join(sorted(rule.methods))} | {rule.policy} | {rule.who} |"
             for rule in RULES]
    return markdown.replace(MARKER, "\n".join(rows))
