"""Benchmark: dictation grading (charla.journey.wordmarks) on typed answers with known mistakes.

Every dictation sentence of the Spanish and English catalogs is typed back with one or two mistakes drawn from
a seeded generator (an accent dropped, a one-letter typo on a long word, a word left out, a word replaced by
an unrelated one, an extra word), each with the mark it should get. Reported per language: the share of answers
whose marks all agree with the expected ones (and whose score does: two adjacent mistakes can be read two
ways), the agreement per kind of mistake, and answers graded per second (one core).
Part of `python -m bench --only voice`; alone: `python -m bench.dictation`.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

from charla.journey import listening_bank as catalog
from charla.journey.wordmarks import CREDIT, TYPO_MIN_LETTERS, Graded, fold, grade, words

SEED = 23
VARIANTS = 8  # typed answers per sentence
MISTAKES = ("accent", "almost", "missing", "wrong", "extra")
_FILLERS = {"es": ("ventana", "azul", "problema", "siempre", "bosque"), "en": ("window", "blue", "problem",
                                                                             "always", "forest")}


@dataclass(frozen=True)
class Case:
    reference: str
    typed: str
    expected: list[str]  # the mark of each reference word, in order
    extras: int
    mistakes: list[str]


def case(reference: str, language: str, rng: random.Random) -> Case:
    """`reference` typed back with one or two mistakes, and the marks they should get."""
    typed = words(reference)
    expected = ["ok"] * len(typed)
    extras, made = 0, []
    for index in rng.sample(range(len(typed)), min(len(typed), rng.choice((1, 2)))):
        kind = rng.choice([k for k in MISTAKES if _fits(k, typed[index])])
        typed[index] = _mistake(kind, typed[index], language, rng)
        if kind == "extra":
            extras += 1
        else:
            expected[index] = kind
        made.append(kind)
    return Case(reference, " ".join(w for w in typed if w), expected, extras, made)


def _fits(kind: str, word: str) -> bool:
    if kind == "accent":
        return fold(word) != word.lower()
    return kind != "almost" or len(word) >= TYPO_MIN_LETTERS


def _mistake(kind: str, word: str, language: str, rng: random.Random) -> str:
    if kind == "accent":
        return fold(word)
    if kind == "almost":
        return _typo(word, rng)
    if kind == "missing":
        return ""
    filler = rng.choice(_FILLERS[language])
    return filler if kind == "wrong" else f"{word} {filler}"


def _typo(word: str, rng: random.Random) -> str:
    """One edit inside the word: two neighbouring letters swapped, a letter dropped or doubled."""
    at = rng.randrange(1, len(word) - 1)
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap" and word[at] != word[at + 1]:
        return word[:at] + word[at + 1] + word[at] + word[at + 2:]
    if edit == "drop" or word[at] == word[at + 1]:
        return word[:at] + word[at + 1:]
    return word[:at] + word[at] + word[at:]


def agrees(graded: Graded, expected: Case) -> bool:
    marks = [m.kind for m in graded.marks if m.kind != "extra"]
    return marks == expected.expected and len(graded.of("extra")) == expected.extras


def measure(language: str) -> dict[str, object]:
    found = catalog.bank(language)
    assert found is not None
    rng = random.Random(f"{SEED}-{language}")
    cases = [case(s, language, rng) for sentences in found.dictation.values() for s in sentences
             for _ in range(VARIANTS)]
    started = time.perf_counter()
    graded = [grade(c.reference, c.typed) for c in cases]
    seconds = time.perf_counter() - started
    per_kind = {kind: _share([agrees(g, c) for g, c in zip(graded, cases, strict=True) if c.mistakes == [kind]])
                for kind in MISTAKES}
    pairs = list(zip(graded, cases, strict=True))
    return {"answers": len(cases), "agreement": _share([agrees(g, c) for g, c in pairs]),
            "same_score": _share([g.score == expected_score(c) for g, c in pairs]),
            "agreement_one_mistake_by_kind": per_kind, "answers_per_s": round(len(cases) / seconds)}


def expected_score(expected: Case) -> int:
    """The score the expected marks give (two adjacent mistakes can be read two ways for the same score)."""
    credit = sum(CREDIT[kind] for kind in expected.expected if kind in CREDIT)
    return round(100 * credit / (len(expected.expected) + expected.extras))


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def run() -> dict[str, object]:
    """Dictation grading in each language with a catalog."""
    return {language: measure(language) for language in ("es", "en")}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
