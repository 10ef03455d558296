"""The placement catalogs: reviewed quiz items per target language, as data
(charla/journey/data/placement/<language>.yaml), validated when loaded.

A closed item (gap-fill or reading) has 2 or 3 options, exactly one of them its answer; a free item is a
writing prompt graded by length and the checker's findings. Every band A1-C1 has closed items, a reading
among them. Option texts fit a WhatsApp list row (24 characters), so no option is ever cut.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

DATA = Path(__file__).resolve().parent / "data" / "placement"
BANDS = ("A1", "A2", "B1", "B2", "C1")
OPTION_CHARS = 24  # a list row's title (charla.channels.meta.graph.ROW_TITLE)

Band = Literal["A1", "A2", "B1", "B2", "C1"]


class UnknownCatalog(LookupError):
    """No placement catalog for this target language."""


class Item(BaseModel):
    """One placement question. `explanation` says why the answer is the one correct option (for reviewers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z]{2}-[a-z0-9-]+$", max_length=40)
    level: Band
    kind: Literal["gap", "reading", "free"]
    text: str = ""  # a reading item's passage
    prompt: str = Field(min_length=3)
    options: tuple[str, ...] = ()
    answer: str = ""
    explanation: str = Field(min_length=10)

    @model_validator(mode="after")
    def _one_answer(self) -> Self:
        if self.kind == "free":
            if self.options or self.answer:
                raise ValueError(f"{self.id}: a free item has no options")
            return self
        if not 2 <= len(self.options) <= 3 or len(set(self.options)) != len(self.options):
            raise ValueError(f"{self.id}: 2 or 3 different options")
        if self.options.count(self.answer) != 1:
            raise ValueError(f"{self.id}: the answer must be exactly one of the options")
        if any(len(option) > OPTION_CHARS for option in self.options):
            raise ValueError(f"{self.id}: options over {OPTION_CHARS} characters")
        if (self.kind == "reading") != bool(self.text):
            raise ValueError(f"{self.id}: a reading item (and only one) has a text")
        return self


class Catalog(BaseModel):
    """One target language's items, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    language: str
    items: tuple[Item, ...]

    @model_validator(mode="after")
    def _complete(self) -> Self:
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.language}: item ids repeat")
        for band in BANDS:
            closed = self.closed(band)
            if len(closed) < 5 or not any(item.kind == "reading" for item in closed):
                raise ValueError(f"{self.language}: band {band} needs 5 closed items, a reading among them")
        if not any(item.kind == "free" for item in self.items):
            raise ValueError(f"{self.language}: no free item")
        return self

    def closed(self, band: str) -> list[Item]:
        return [item for item in self.items if item.level == band and item.kind != "free"]

    def free(self) -> list[Item]:
        return [item for item in self.items if item.kind == "free"]

    def item(self, item_id: str) -> Item | None:
        return next((item for item in self.items if item.id == item_id), None)


def languages() -> list[str]:
    """The target languages with a placement catalog."""
    return sorted(path.stem for path in DATA.glob("*.yaml"))


@cache
def catalog(language: str) -> Catalog:
    """The placement catalog of `language` (UnknownCatalog when there is none)."""
    path = DATA / f"{language}.yaml"
    if language not in languages():
        raise UnknownCatalog(f"no placement catalog for {language!r}")
    loaded = Catalog.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    if loaded.language != language:
        raise ValueError(f"{path.name} says it is {loaded.language!r}")
    return loaded
