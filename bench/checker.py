"""The learner-error checker against its corpora (charla/tutor/checker/corpus/<lang>.tsv): precision and recall
per language and category on a split (the held-out one by default), and sentences per second on one core.

A finding is right when it has the annotated category and applying it alone turns the sentence into the
annotated correction (so the span may be wider or narrower than the annotation). Any finding on a correct
sentence is wrong. Recall: annotated errors some right finding corrects."""

from __future__ import annotations

import csv
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from charla.tutor.checker.base import MODULES, Finding

CORPUS = Path(__file__).resolve().parent.parent / "charla" / "tutor" / "checker" / "corpus"


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
        return self.sentence.replace(self.original, self.corrected, 1) if self.original else self.sentence


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


def throughput(lang: str, sentences: list[str], rounds: int = 3) -> float:
    """Sentences checked per second, through the batched path `charla check` uses on stdin."""
    check_all(lang, sentences[:5])  # load the pipeline first
    started = time.perf_counter()
    for _ in range(rounds):
        check_all(lang, sentences)
    return round(rounds * len(sentences) / (time.perf_counter() - started), 1)


def run(split: str = "held") -> dict[str, object]:
    """Every language with a corpus: its scores on `split`, its speed on the whole corpus, the machine."""
    result: dict[str, object] = {"split": split, "machine": {
        "cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0], "platform": platform.platform()}}
    for lang in sorted(MODULES):
        examples = corpus(lang, split)
        if not examples:
            continue
        scored = score(examples, check_all(lang, [e.sentence for e in examples]))
        everything = [e.sentence for e in corpus(lang)]
        result[lang] = {**scored, "sentences_per_second": throughput(lang, everything)}
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "held"), indent=2, ensure_ascii=False))
