"""mkdocs hook: the code map, rendered from the source tree at build time.

A page that contains the marker `<!-- code-map -->` gets, in its place, one table per Python package of the
checkout (every directory with an `__init__.py`, subpackages included): each module, its length and the first
sentence of its docstring. The SQL migrations are listed with their first comment line. A module without a
docstring is a warning, so `mkdocs build --strict` keeps the map complete.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MARKER = "<!-- code-map -->"
# Top-level packages in the order a newcomer meets them; any other package follows, alphabetically.
ORDER = ("charla", "orchestrator", "agents", "voice", "payments", "schema", "bench", "tests")
SKIP = {".venv", ".git", "site", "docs", "node_modules", ".charla"}

log = logging.getLogger("mkdocs.hooks.code_map")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker with the map (mkdocs calls this for every page)."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(Path(config["config_file_path"]).parent, warn=log.warning))


def render(root: Path, warn: Callable[[str], None]) -> str:
    """One markdown table per package under `root`."""
    return "\n".join(_package_table(root, package, warn) for package in packages(root))


def packages(root: Path) -> list[Path]:
    """Every package directory under `root`, top-level ones in ORDER, each followed by its subpackages."""
    tops = [path for path in root.iterdir() if _is_package(path) and path.name not in SKIP]
    tops.sort(key=lambda path: (ORDER.index(path.name) if path.name in ORDER else len(ORDER), path.name))
    return [package for top in tops for package in _walk(top)]


def _walk(package: Path) -> Iterator[Path]:
    yield package
    for child in sorted(package.iterdir()):
        if _is_package(child):
            yield from _walk(child)


def _is_package(path: Path) -> bool:
    return path.is_dir() and (path / "__init__.py").is_file()


def _package_table(root: Path, package: Path, warn: Callable[[str], None]) -> str:
    name = package.relative_to(root).as_posix() + "/"
    lines = [f"### `{name}`", "", _summary(package / "__init__.py", warn) or "", ""]
    modules = sorted(path for path in package.glob("*.py") if path.name != "__init__.py")
    tests = [path for path in modules if path.name.startswith("test_")]
    rows = [(path.name, _length(path), _summary(path, warn)) for path in modules if path not in tests]
    rows += [(path.name, _length(path), _first_comment(path)) for path in sorted(package.glob("*.sql"))]
    if rows:
        lines += ["| module | lines | what it is |", "|---|---:|---|"]
        lines += [f"| `{module}` | {length} | {text} |" for module, length, text in rows]
    if tests:
        lines += ["", f"Test modules ({len(tests)}): " + ", ".join(f"`{path.name}`" for path in tests) + "."]
    return "\n".join([*lines, ""])


def _length(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _summary(path: Path, warn: Callable[[str], None]) -> str:
    """The first sentence of a module's docstring, on one line and safe inside a table cell."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if not docstring:
        if path.name == "__main__.py":
            return f"`python -m {path.parent.name}`"
        if path.name != "__init__.py":
            warn(f"{path}: the module has no docstring, so the code map cannot say what it is")
        return ""
    return _cell(_first_sentence(docstring))


def _first_comment(path: Path) -> str:
    comments = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        comments.append(line.removeprefix("--").strip())
    return _cell(_first_sentence(" ".join(comments)))


def _first_sentence(text: str) -> str:
    paragraph = " ".join(text.split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return match.group(1) if match else paragraph


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
