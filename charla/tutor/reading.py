"""The read-aloud bank: short sentences to read, by target language, CEFR band and the error category they
exercise (charla/tutor/content/reading.<lang>.tsv: band, category, sentence). Deterministic, no model: the
sentence chosen is the one at the learner's band (or the band below) that holds most of their weak words
(vocabulary they struggle with, words they mispronounced before) and exercises their most frequent error,
among those not read recently."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

from charla.store.profile import Profile, level_to_use
from charla.tutor import questions
from charla.tutor.questions import BANDS, band

WEAK_STRENGTH = 0.5  # vocabulary under this strength counts as weak
RECENT = 5  # sentences read lately, not offered again while others remain


@dataclass(frozen=True)
class Sentence:
    band: str
    category: str
    text: str


@cache
def bank(lang: str) -> tuple[Sentence, ...]:
    """Every sentence of `lang`'s bank (English for a language without one)."""
    return tuple(Sentence(row["band"], row["category"], row["sentence"]) for row in questions.rows("reading", lang))


def weak_words(profile: Profile) -> set[str]:
    """Words this learner finds hard: weak vocabulary and words they did not say right when reading."""
    vocab = {w for w, entry in profile.vocabulary.items() if entry.strength < WEAK_STRENGTH}
    spoken = {w for w, stat in profile.speaking.words.items() if stat.misses * 2 > stat.tries}
    return vocab | spoken


def choose(profile: Profile, lang: str) -> Sentence:
    """The next sentence for this learner to read aloud."""
    level = band(level_to_use(profile))
    near = {level, BANDS[max(0, BANDS.index(level) - 1)]}
    pool = [s for s in bank(lang) if s.band in near] or list(bank(lang))
    fresh = [s for s in pool if s.text not in profile.speaking.recent[-RECENT:]] or pool
    weak, errors = weak_words(profile), [c for c, _ in profile.top_errors()]
    rotation = profile.speaking.readings

    def rank(s: Sentence) -> tuple[int, int, int]:
        words = {w.strip(".,;:!?¿¡").lower() for w in s.text.split()}
        hits = len(words & weak)
        matches = errors.index(s.category) if s.category in errors else len(errors)
        return -hits, matches, zlib.crc32(f"{s.text}{rotation}".encode())

    return min(fresh, key=rank)
