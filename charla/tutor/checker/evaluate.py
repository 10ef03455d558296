"""The checker against its corpora (charla/tutor/checker/corpus/<lang>.tsv, written for Charla: one annotated
error per sentence, or none; split into dev, used while writing the rules, and held, kept aside to measure them).

A finding is right when it has the annotated category and applying it alone turns the sentence into the
annotated correction (so the span may be wider or narrower than the annotation). Any finding on a correct
sentence is wrong. Recall: annotated errors some right finding corrects."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from charla.tutor.checker.base import MODULES, Finding

CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass(frozen=True)
class Example:
    """One corpus row; `original` empty for a correct sentence."""

    split: str
    sentence: str
    original: str
    corrected: str
    category: str

    @property
    def target(self) -> str:
        """The sentence as it should be."""
        if not self.original:
            return self.sentence
        return re.sub(rf"(?<!\w){re.escape(self.original)}(?!\w)", lambda _: self.corrected, self.sentence, count=1)


def corpus(lang: str, split: str | None = None) -> list[Example]:
    """The corpus of `lang` (empty when it has none), one split or all."""
    path = CORPUS / f"{lang}.tsv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = [Example(**row) for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return [row for row in rows if split in (None, row.split)]


def check_all(lang: str, sentences: list[str]) -> list[list[Finding]]:
    """The checker of `lang` over many sentences (batched when the checker offers `check_many`)."""
    module = import_module(MODULES[lang])
    batched = getattr(module, "check_many", None)
    return list(batched(sentences)) if batched else [module.check(s) for s in sentences]


def _applied(sentence: str, finding: Finding) -> str:
    return sentence[:finding.start] + finding.corrected + sentence[finding.end:]


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def score(examples: list[Example], found: list[list[Finding]]) -> dict[str, object]:
    """Precision and recall overall and per category, with the counts behind them."""
    right, made, wanted, caught = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    misses: list[str] = []
    for example, findings in zip(examples, found, strict=True):
        good = [f for f in findings if f.category == example.category and _same(_applied(example.sentence, f),
                                                                                 example.target)]
        for f in findings:
            made[f.category] += 1
            right[f.category] += f in good
        if example.original:
            wanted[example.category] += 1
            caught[example.category] += bool(good)
        misses += [f"{example.sentence} | {f.original} → {f.corrected} ({f.category})" for f in findings
                   if f not in good]
    return {**_ratios(sum(right.values()), sum(made.values()), sum(caught.values()), sum(wanted.values())),
            "sentences": len(examples),
            "categories": {c: _ratios(right[c], made[c], caught[c], wanted[c]) for c in sorted(wanted | made)},
            "wrong_findings": misses}


def _ratios(right: int, made: int, caught: int, wanted: int) -> dict[str, object]:
    return {"precision": round(right / made, 3) if made else None, "recall": round(caught / wanted, 3) if wanted
            else None, "findings": made, "right": right, "errors": wanted, "caught": caught}
