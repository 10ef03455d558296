"""`python -m bench --only checker`: the learner-error checker's precision and recall per language and category
on the held-out split of its corpora (see charla.tutor.checker.evaluate), and sentences per second."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time

from charla.tutor.checker.base import MODULES, Finding
from charla.tutor.checker.evaluate import Example, check_all, corpus, score
from charla.tutor.findings import merge
from charla.tutor.prompt import Correction

# The simulated model of `with_a_model`: it catches this share of the annotated errors and invents a wrong
# correction in this share of all sentences (deterministic: chosen by a hash of the sentence).
MODEL_CATCHES, MODEL_INVENTS = 0.6, 0.15


def throughput(lang: str, sentences: list[str], rounds: int = 3) -> float:
    """Sentences checked per second, through the batched path `charla check` uses on stdin."""
    check_all(lang, sentences[:5])  # load the pipeline first
    started = time.perf_counter()
    for _ in range(rounds):
        check_all(lang, sentences)
    return round(rounds * len(sentences) / (time.perf_counter() - started), 1)


def _chance(text: str, salt: str) -> float:
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _fake_model(example: Example) -> list[Correction]:
    """What a model that misses errors and invents others says of one sentence."""
    said = []
    if example.original and _chance(example.sentence, "catch") < MODEL_CATCHES:
        said.append(Correction(original=example.original, corrected=example.corrected, category="other"))
    words = example.sentence.split()
    if words and _chance(example.sentence, "invent") < MODEL_INVENTS:
        word = words[len(words) // 2].strip(".,;:!?¡¿")
        said.append(Correction(original=word, corrected=word + "s", category="other"))
    return said


def _right(example: Example, fix: Correction) -> bool:
    fixed = example.sentence.replace(fix.original, fix.corrected, 1)
    return " ".join(fixed.split()).casefold() == " ".join(example.target.split()).casefold()


def _rates(examples: list[Example], said: list[list[Correction]]) -> dict[str, float | None]:
    made = sum(len(fixes) for fixes in said)
    right = sum(_right(e, f) for e, fixes in zip(examples, said, strict=True) for f in fixes)
    errors = [any(_right(e, f) for f in fixes) for e, fixes in zip(examples, said, strict=True) if e.original]
    return {"precision": round(right / made, 3) if made else None,
            "recall": round(sum(errors) / len(errors), 3) if errors else None}


def with_a_model(examples: list[Example], found: list[list[Finding]]) -> dict[str, object]:
    """The effect of merging the checker's findings into a model's corrections (charla.tutor.findings.merge),
    with a simulated model that misses errors and invents others."""
    model = [_fake_model(e) for e in examples]
    merged = [merge(fixes, finds, "en") for fixes, finds in zip(model, found, strict=True)]
    return {"model_catches": MODEL_CATCHES, "model_invents": MODEL_INVENTS, "model_alone": _rates(examples, model),
            "with_the_checker": _rates(examples, [m.corrections for m in merged]),
            "second_opinions_asked": sum(m.contradicted for m in merged)}


def run(split: str = "held") -> dict[str, object]:
    """Every language with a corpus: its scores on `split`, its speed on the whole corpus, the machine."""
    result: dict[str, object] = {"split": split, "machine": {
        "cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0], "platform": platform.platform()}}
    for lang in sorted(MODULES):
        examples = corpus(lang, split)
        if not examples:
            continue
        found = check_all(lang, [e.sentence for e in examples])
        everything = [e.sentence for e in corpus(lang)]
        result[lang] = {**score(examples, found), "sentences_per_second": throughput(lang, everything),
                        "merged_with_a_model": with_a_model(examples, found)}
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "held"), indent=2, ensure_ascii=False))
