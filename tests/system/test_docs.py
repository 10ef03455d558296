"""The documentation: the site builds with `mkdocs build --strict` (a broken link, an unknown anchor or an
undocumented setting fails), the configuration reference covers every setting, and the README stays short
with every relative link pointing at a file."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Markdown links and images: [text](target) and ![alt](target); the target up to a space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def _hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "hooks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the site whose mkdocs.yml is in `root`, with the venv's mkdocs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = _build(ROOT, site)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (site / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "<code>CHARLA_BUS_MAX_DELIVERIES</code>" in page  # the hook ran: the marker became tables
    assert "settings-reference" not in page
    assert "<code>bus.py</code>" in (site / "development" / "index.html").read_text(encoding="utf-8")


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    with (tmp_path / "docs" / "index.md").open("a", encoding="utf-8") as page:
        page.write("\nSee [the missing page](missing.md).\n")
    done = _build(tmp_path, tmp_path / "site")
    assert done.returncode != 0
    assert "missing.md" in done.stdout + done.stderr


def test_configuration_reference_names_every_setting() -> None:
    hook = _hook("settings_reference")
    settings = hook.load_settings_class(ROOT)
    warnings: list[str] = []
    text = hook.render(settings, warn=warnings.append)
    assert warnings == []
    for field in settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        assert f"| `{alias.choices[0]}`<br>" in text


def test_a_setting_without_a_description_is_reported() -> None:
    class Extra(BaseSettings):
        documented: int = Field(3, ge=1, validation_alias=AliasChoices("CHARLA_DOCUMENTED"), description="kept")
        silent: str | None = Field(None, validation_alias=AliasChoices("CHARLA_SILENT_SETTING"))

    warnings: list[str] = []
    text = _hook("settings_reference").render(Extra, warn=warnings.append)
    assert any("CHARLA_SILENT_SETTING has no description" in warning for warning in warnings)
    assert "| `CHARLA_DOCUMENTED`<br><small>integer ≥ 1</small> | `3` | kept |" in text


def test_code_map_lists_every_module() -> None:
    warnings: list[str] = []
    text = _hook("code_map").render(ROOT, warn=warnings.append)
    assert warnings == []
    for path in (ROOT / "charla").rglob("*.py"):
        if path.name != "__init__.py":
            assert f"| `{path.name}` |" in text, path


def test_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 220


def test_readme_keeps_the_two_command_quickstart() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make up " in text
    assert "make test " in text


@pytest.mark.parametrize("target", sorted({match for match in LINK.findall(README.read_text(encoding="utf-8"))
                                          if not re.match(r"[a-z]+:|#", match)}))
def test_readme_relative_links_point_at_files(target: str) -> None:
    assert (ROOT / target.split("#")[0]).exists(), target
