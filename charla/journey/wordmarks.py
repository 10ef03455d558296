"""Word-by-word grading of a typed dictation: deterministic, no model.

Both texts are cut into words (case and punctuation ignored; marks keep the words as written). A typed word
close to a reference word (the same letters but for accents, or one edit away on a word of five letters or more)
is given that word's key, then the two key sequences are aligned on the most words in common (rapidfuzz's Indel
opcodes: a longest common subsequence), so a typo or an accent slip lines up with the word it misspells instead
of counting as one word missing and one extra. Each reference word gets a mark: ok, accent (right but for
accents or ñ: accepted, with a softer mark), almost (a typo), wrong or missing; typed words with no place in
the sentence are extra. Within a run of unrelated words, words pair up in order.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from rapidfuzz.distance import OSA, Indel

Kind = Literal["ok", "accent", "almost", "wrong", "missing", "extra"]
# How much of a word each mark earns in the score.
CREDIT: dict[Kind, float] = {"ok": 1.0, "accent": 0.75, "almost": 0.5, "wrong": 0.0, "missing": 0.0, "extra": 0.0}
TYPO_MIN_LETTERS = 5  # one edit on a shorter word is usually another word (mi/mis, the/they)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


@dataclass(frozen=True)
class Mark:
    kind: Kind
    expected: str = ""  # the reference word ("" for an extra word)
    typed: str = ""  # what the learner typed for it ("" for a missing word)


@dataclass(frozen=True)
class Graded:
    marks: list[Mark]

    @property
    def score(self) -> int:
        """0-100: the credit of every reference word, over the reference's words plus the extra ones."""
        if not self.marks:
            return 100
        return round(100 * sum(CREDIT[m.kind] for m in self.marks) / len(self.marks))

    def of(self, *kinds: Kind) -> list[Mark]:
        return [m for m in self.marks if m.kind in kinds]


def words(text: str) -> list[str]:
    """The words of `text` (curly apostrophes made straight: "don’t" is "don't")."""
    return _WORD.findall(text.replace("’", "'"))


def fold(word: str) -> str:
    """The word in lower case without accents (and ñ as n): the key of accent-only slips."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(ch))


def grade(reference: str, typed: str) -> Graded:
    """The marks of what the learner typed against the sentence they heard."""
    expected, given = words(reference), words(typed)
    keys = [fold(w) for w in expected]
    typed_keys = [_key(fold(w), keys) for w in given]
    marks: list[Mark] = []
    ref: list[str] = []
    got: list[str] = []
    for op in Indel.opcodes(keys, typed_keys):  # the most words in common, then runs of differences
        if op.tag != "equal":
            ref += expected[op.src_start:op.src_end]
            got += given[op.dest_start:op.dest_end]
            continue
        marks += _differences(ref, got)
        ref, got = [], []
        marks += [_pair(e, t) for e, t in zip(expected[op.src_start:op.src_end], given[op.dest_start:op.dest_end],
                                              strict=True)]
    return Graded(marks + _differences(ref, got))


def _differences(ref: list[str], got: list[str]) -> list[Mark]:
    """A run of unrelated words: they pair up in order as wrong ones, the rest are missing or extra."""
    return [*(Mark("wrong", e, t) for e, t in zip(ref, got, strict=False)),
            *(Mark("missing", e) for e in ref[len(got):]), *(Mark("extra", typed=t) for t in got[len(ref):])]


def _key(typed: str, keys: list[str]) -> str:
    """The reference key a typed (folded) word stands for: itself, or the reference word it is a typo of."""
    if typed in keys:
        return typed
    close = [k for k in keys if len(k) >= TYPO_MIN_LETTERS and OSA.distance(typed, k, score_cutoff=1) <= 1]
    return close[0] if close else typed


def _pair(expected: str, typed: str) -> Mark:
    if expected.lower() == typed.lower():
        return Mark("ok", expected, typed)
    if fold(expected) == fold(typed):
        return Mark("accent", expected, typed)
    return Mark("almost", expected, typed)
