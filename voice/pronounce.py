"""Pronunciation feedback from a transcript: what the learner said, aligned word by word with the phrase
they were asked to repeat.

What this can hear: words Whisper wrote differently from the target (a substitution: "pero" for "perro"),
words it did not hear at all, and words it heard but with low probability (unclear). What it cannot
hear: accent, stress, vowel quality or intonation as such. Whisper is trained to recover the intended
words, so a mild mispronunciation of a word it can guess is usually written correctly and passes.
Treat a flag as "worth another try", never as a phonetic verdict.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field

import regex

UNCLEAR_BELOW = 0.5  # word probability under which a matched word is reported as unclear
_WORD = regex.compile(r"[\p{L}\p{N}']+")


@dataclass(frozen=True)
class Word:
    """A word as heard, with when it was said and how sure Whisper was of it."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Feedback:
    target: str
    heard: str
    score: float  # share of target words heard clearly, 0..1
    misheard: list[tuple[str, str]] = field(default_factory=list)  # (target word, what was heard)
    missing: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        return [t for t, _ in self.misheard] + self.missing + self.unclear


def words(text: str) -> list[str]:
    """Lower-case words without punctuation or accents ("¿Dónde?" → "donde"): accents are spelling, not sound."""
    return [_fold(w) for w in _WORD.findall(text.lower())]


def _fold(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if unicodedata.category(ch) != "Mn")


def similarity(target: str, heard: str) -> float:
    """How much of the target the learner attempted, 0..1 (a different sentence scores low)."""
    return difflib.SequenceMatcher(a=words(target), b=words(heard), autojunk=False).ratio()


def assess(target: str, heard: list[Word]) -> Feedback:
    """Align the heard words with `target`'s and name the ones likely mispronounced or missing."""
    want = words(target)
    got: list[tuple[str, float]] = []
    for word in heard:
        got += [(w, word.probability) for w in words(word.text)]
    matcher = difflib.SequenceMatcher(a=want, b=[w for w, _ in got], autojunk=False)
    misheard: list[tuple[str, str]] = []
    missing: list[str] = []
    unclear: list[str] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            unclear += [want[a1 + i] for i in range(a2 - a1) if got[b1 + i][1] < UNCLEAR_BELOW]
        elif op == "replace":
            pairs, lost = _pair(want[a1:a2], [w for w, _ in got[b1:b2]])
            misheard += pairs
            missing += lost
        elif op == "delete":
            missing += want[a1:a2]
    bad = len(missing) + len(unclear) + len(misheard)
    score = max(0.0, 1 - bad / len(want)) if want else 0.0
    return Feedback(target, " ".join(w.text for w in heard).strip(), round(score, 2), misheard, missing, unclear)


def _pair(wanted: list[str], heard: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Within a stretch that differs, each target word with the heard word most like it (one-to-one), in
    order; a target word with nothing alike was not heard at all."""
    if len(wanted) == len(heard):
        return list(zip(wanted, heard, strict=True)), []
    pairs: list[tuple[str, str]] = []
    lost: list[str] = []
    free = list(heard)
    for word in wanted:
        best = max(free, key=lambda h: difflib.SequenceMatcher(a=word, b=h).ratio(), default=None)
        if best is not None and difflib.SequenceMatcher(a=word, b=best).ratio() >= 0.5:
            pairs.append((word, best))
            free = free[free.index(best) + 1:]
        else:
            lost.append(word)
    return pairs, lost
