"""Precision and recall of a checker on its corpus (charla/tutor/checker/corpus/<lang>.tsv), per category.

A finding is right when applying it to the sentence gives the annotated correction of the sentence (so the
span a rule chooses does not matter, only the corrected text); every finding on a correct sentence is wrong.
`python -m charla.tutor.checker.scoring en [dev|held|all]` prints the figures and the speed of `check`."""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from charla.tutor.checker.base import Finding, check

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True)
class Example:
    """One corpus line: a sentence, and its one annotated error (all "" for a correct sentence)."""

    split: str
    sentence: str
    original: str
    corrected: str
    category: str

    @property
    def gold(self) -> str:
        return self.sentence.replace(self.original, self.corrected, 1) if self.original else self.sentence


@dataclass(frozen=True)
class Score:
    """Counts over a corpus split: right findings, all findings, annotated errors, per category too."""

    right: Counter[str]
    found: Counter[str]
    errors: Counter[str]
    sentences: int
    per_second: float

    def precision(self, category: str = "") -> float:
        found = self.found[category] if category else sum(self.found.values())
        right = self.right[category] if category else sum(self.right.values())
        return right / found if found else 1.0

    def recall(self, category: str = "") -> float:
        errors = self.errors[category] if category else sum(self.errors.values())
        right = self.right[category] if category else sum(self.right.values())
        return right / errors if errors else 1.0


def examples(lang: str, split: str = "all") -> list[Example]:
    """The corpus of `lang`, one split of it (dev, held) or all of it."""
    with (CORPUS / f"{lang}.tsv").open(newline="") as f:
        rows = [Example(**row) for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return [row for row in rows if split in {"all", row.split}]


def applied(sentence: str, finding: Finding) -> str:
    return sentence[:finding.start] + finding.corrected + sentence[finding.end:]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def score(lang: str, split: str = "held") -> Score:
    """Run `check` on every sentence of the split and count: a right finding counts under the annotated
    category (recall), a wrong one under the category the checker gave it (precision)."""
    right, found, errors = Counter[str](), Counter[str](), Counter[str]()
    rows = examples(lang, split)
    check("", lang)  # load the checker's data first: the speed is of checking
    began = time.perf_counter()
    results = [check(row.sentence, lang) for row in rows]
    elapsed = time.perf_counter() - began
    for row, findings in zip(rows, results, strict=True):
        errors.update([row.category] if row.category else [])
        right_here = False
        for finding in findings:  # at most one right finding a sentence: it has one error
            ok = bool(row.original) and _norm(applied(row.sentence, finding)) == _norm(row.gold) \
                and not right_here
            right_here = right_here or ok
            found[row.category if ok else finding.category] += 1
            right.update([row.category] if ok else [])
    return Score(right, found, errors, len(rows), len(rows) / elapsed if elapsed else 0.0)


def report(lang: str, split: str = "held") -> str:
    """The figures of `score` as lines of text."""
    s = score(lang, split)
    lines = [f"{lang} {split}: {s.sentences} sentences, precision {s.precision():.2f}, recall {s.recall():.2f}, "
             f"{s.per_second:.0f} sentences/s"]
    for category in sorted(set(s.errors) | set(s.found)):
        lines.append(f"  {category:20} precision {s.precision(category):.2f} recall {s.recall(category):.2f} "
                     f"({s.right[category]}/{s.errors[category]} errors, {s.found[category]} findings)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1] if len(sys.argv) > 1 else "en", sys.argv[2] if len(sys.argv) > 2 else "held"))
