"""The roleplay missions catalog: data files per target language (charla/journey/data/missions/<lang>.yaml),
validated on load, with the deterministic checks of each mission's success criteria.

A mission has a setting, the counterpart Charla plays, the learner's goal and its criteria: each criterion is
met when something the learner wrote matches one of its patterns (searched in the text lower-cased and without
accents), so whether the goal was reached needs no model. Each criterion also has the counterpart's line that
leads towards it, which is what the counterpart says when no model can improvise (offline mode).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator

from charla.store.profile import CEFR

DATA = Path(__file__).parent / "data" / "missions"
TITLE_MAX = 24  # a WhatsApp list row's title
ROW_DESCRIPTION_MAX = 72  # a list row's description
LIST_MAX = 10  # rows of one WhatsApp list message


class Criterion(BaseModel):
    """One thing the learner must do: `says` it in the debrief, met when a pattern matches their words."""

    id: str = Field(pattern=r"^[a-z_]+$")
    says: str = Field(min_length=3, max_length=80)
    patterns: list[str] = Field(min_length=1)
    prompt: str = Field(min_length=2, max_length=200)  # the counterpart's line towards it (offline)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r}: {exc}") from exc
        return patterns

    def met_by(self, folded: str) -> bool:
        """Whether the learner's words (`fold`ed) do it."""
        return any(re.search(pattern, folded) for pattern in self.patterns)


class Mission(BaseModel):
    id: str = Field(pattern=r"^[a-z_]+$")
    levels: list[str] = Field(min_length=1)
    title: str = Field(min_length=3, max_length=TITLE_MAX)
    setting: str = Field(min_length=10, max_length=200)
    counterpart: str = Field(min_length=3, max_length=120)
    goal: str = Field(min_length=10, max_length=200)
    opening: str = Field(min_length=2, max_length=200)
    closing: str = Field(min_length=2, max_length=200)
    max_turns: int = Field(ge=3, le=12)
    criteria: list[Criterion] = Field(min_length=2, max_length=5)
    phrases: list[str] = Field(min_length=2, max_length=6)
    sample: list[str] = Field(min_length=1)  # one way to reach the goal (the catalog test plays it)

    @field_validator("levels")
    @classmethod
    def _cefr(cls, levels: list[str]) -> list[str]:
        if any(level not in CEFR for level in levels) or levels != sorted(set(levels), key=CEFR.index):
            raise ValueError(f"levels must be CEFR levels in order, each once: {levels}")
        return levels

    @property
    def band(self) -> str:
        """"A2–B1", or "A1" for a mission of one level."""
        return self.levels[0] if len(self.levels) == 1 else f"{self.levels[0]}–{self.levels[-1]}"

    def row(self) -> str:
        """The mission's list row description: its band and setting, within WhatsApp's limit."""
        text = f"{self.band} · {self.setting}"
        return text if len(text) <= ROW_DESCRIPTION_MAX else text[:ROW_DESCRIPTION_MAX - 1].rstrip() + "…"

    def met(self, text: str) -> list[str]:
        """The criteria `text` meets, by id."""
        folded = fold(text)
        return [c.id for c in self.criteria if c.met_by(folded)]

    def missing(self, met: list[str]) -> list[Criterion]:
        return [c for c in self.criteria if c.id not in met]


class Catalog(BaseModel):
    version: int
    missions: list[Mission] = Field(min_length=1)


def fold(text: str) -> str:
    """Lower case, accents removed, typographic apostrophes made plain: what criteria patterns search."""
    plain = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(ch for ch in plain if not unicodedata.combining(ch))


def languages() -> list[str]:
    """The target languages with missions."""
    return sorted(path.stem for path in DATA.glob("*.yaml"))


@cache
def load(target: str) -> Catalog | None:
    """The missions for learners of `target` (None when there are none). A broken file raises on first use
    (and in the catalog test), never mid-mission."""
    path = DATA / f"{target}.yaml"
    if not path.exists():
        return None
    return Catalog.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def find(target: str, wanted: str) -> Mission | None:
    """A mission of `target` by its id, or by (a folded part of) its title: "cafe", "hotel", "market"."""
    catalog, key = load(target), fold(wanted).strip()
    if catalog is None or not key:
        return None
    words = re.findall(r"\w{4,}", key)
    return (next((m for m in catalog.missions if m.id == key or key in fold(m.title)), None)
            or next((m for m in catalog.missions for w in words if w == m.id or w in fold(m.title).split()), None))


def for_level(target: str, level: str | None) -> list[Mission]:
    """Up to LIST_MAX missions for a learner at `level` (A2 when unknown): their own level first, then the
    nearest ones, easier before harder."""
    catalog = load(target)
    if catalog is None:
        return []
    at = CEFR.index(level) if level is not None and level in CEFR else 1

    def distance(mission: Mission) -> tuple[int, int]:
        gaps = [CEFR.index(lv) - at for lv in mission.levels]
        nearest = min(gaps, key=abs)
        return abs(nearest), nearest > 0

    return sorted(catalog.missions, key=distance)[:LIST_MAX]
