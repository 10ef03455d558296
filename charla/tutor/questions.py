"""The content bank: short follow-up questions by target language, CEFR band (A1-C1) and topic, from the
reviewed data files in charla/tutor/content/ (questions.<lang>.tsv: band, topic, question). Offline, and
whenever a model's reply is unusable, the learner still gets a question that keeps the conversation going."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CONTENT = Path(__file__).resolve().parent / "content"
BANDS = ("A1", "A2", "B1", "B2", "C1")
DEFAULT_BAND = "A2"  # a learner whose level is not known yet
FALLBACK_LANGUAGE = "en"  # a target language without a bank of its own


@dataclass(frozen=True)
class Question:
    band: str
    topic: str
    text: str


@cache
def bank(lang: str) -> tuple[Question, ...]:
    """Every question of `lang`'s bank (English for a language without one)."""
    return tuple(Question(row["band"], row["topic"], row["question"]) for row in rows("questions", lang))


def rows(name: str, lang: str) -> list[dict[str, str]]:
    """The rows of the content bank `name` (content/<name>.<lang>.tsv; English for a language without one)."""
    path = CONTENT / f"{name}.{lang}.tsv"
    if not path.exists():
        path = CONTENT / f"{name}.{FALLBACK_LANGUAGE}.tsv"
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def band(level: str | None) -> str:
    """The bank's band for a CEFR level (C2 learners get C1 questions; unknown: A2)."""
    level = (level or "").upper()
    return "C1" if level == "C2" else level if level in BANDS else DEFAULT_BAND


def follow_up(lang: str, level: str | None, topic: str | None, asked: Iterable[str] = ()) -> str:
    """A question at the learner's band, on their topic when the bank has one, not one already asked in
    `asked` (the session's recent messages) while another remains; deterministic."""
    at_band = [q for q in bank(lang) if q.band == band(level)]
    on_topic = [q for q in at_band if q.topic == topic] or [q for q in at_band if q.topic == "general"]
    said = "\n".join(asked)
    ordered = [*on_topic, *(q for q in at_band if q not in on_topic)]
    return next((q.text for q in ordered if q.text not in said), ordered[len(said) % len(ordered)].text)
