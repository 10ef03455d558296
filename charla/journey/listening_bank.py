"""The listening drills' catalog: sentences to dictate and passages with questions, per target language and
CEFR level (charla/journey/data/listening/<lang>.yaml), and how one is picked for a learner: at their level,
not one done lately, a sentence with one of their weak words first."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from charla.journey.wordmarks import fold, words
from charla.store.profile import CEFR, Profile, level_to_use

DATA = Path(__file__).resolve().parent / "data" / "listening"
DEFAULT_LEVEL = "A2"
OPTION_CHARS = 24  # a WhatsApp list row's title
WEAK = 0.5  # a vocabulary word below this strength is a weak one
T = TypeVar("T")


class Question(BaseModel):
    model_config = ConfigDict(frozen=True)

    question: str
    options: tuple[str, ...] = Field(min_length=2, max_length=3)
    answer: int  # the index of the one right option

    @model_validator(mode="after")
    def _one_right(self) -> Question:
        if not 0 <= self.answer < len(self.options) or len(set(self.options)) != len(self.options):
            raise ValueError(f"{self.question!r}: `answer` must name one of its distinct options")
        if any(len(o) > OPTION_CHARS for o in self.options):
            raise ValueError(f"{self.question!r}: an option is longer than {OPTION_CHARS} characters")
        return self


class Passage(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    level: str
    text: str
    questions: tuple[Question, ...] = Field(min_length=2, max_length=3)


class Bank(BaseModel):
    model_config = ConfigDict(frozen=True)

    dictation: dict[str, tuple[str, ...]]
    passages: tuple[Passage, ...]


@cache
def bank(language: str) -> Bank | None:
    """The drills in `language` (a target language code), or None when there are none."""
    path = DATA / f"{language}.yaml"
    return Bank.model_validate(yaml.safe_load(path.read_text())) if path.is_file() else None


def sentence_id(text: str) -> str:
    """A short stable id of a sentence (what the profile remembers of it)."""
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


def level_of(profile: Profile, asked: str = "") -> str:
    """The level to drill: the one asked for ("dictation B1"), else the learner's (`level_to_use`: measured,
    declared or inferred, the most recent), else A2; C2 is C1's."""
    level = (asked.upper() if asked.upper() in CEFR else None) or level_to_use(profile)
    return "C1" if level == "C2" else level if level in CEFR else DEFAULT_LEVEL


def weak_words(profile: Profile) -> set[str]:
    """Words the learner is weak on (folded): weak vocabulary and words they missed in dictations."""
    weak = {w for w, entry in profile.vocabulary.items() if entry.strength < WEAK}
    return {fold(w) for w in weak | set(profile.listening.missed)}


def pick_sentence(found: Bank, level: str, profile: Profile) -> str:
    """A sentence at `level` (the nearest level that has some) not dictated lately, one with a weak word first."""
    sentences = _nearest(found.dictation, level)
    fresh = [s for s in sentences if sentence_id(s) not in profile.listening.seen] or list(sentences)
    weak = weak_words(profile)
    return next((s for s in fresh if weak & {fold(w) for w in words(s)}), fresh[0])


def pick_passage(found: Bank, level: str, profile: Profile) -> Passage:
    """A passage at `level` (or the nearest level that has one) not heard lately."""
    by_level: dict[str, tuple[Passage, ...]] = {}
    for passage in found.passages:
        by_level[passage.level] = (*by_level.get(passage.level, ()), passage)
    passages = _nearest(by_level, level)
    return next((p for p in passages if p.id not in profile.listening.seen), passages[0])


def passage(language: str, passage_id: str) -> Passage | None:
    found = bank(language)
    return next((p for p in found.passages if p.id == passage_id), None) if found else None


def _nearest(by_level: dict[str, tuple[T, ...]], level: str) -> tuple[T, ...]:
    here = CEFR.index(level)
    return next(by_level[lv] for lv in sorted(CEFR, key=lambda lv: abs(CEFR.index(lv) - here)) if by_level.get(lv))
