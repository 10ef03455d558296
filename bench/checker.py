"""`python -m bench --only checker`: the learner-error checker's precision and recall per language and category
on the held-out split of its corpora (see charla.tutor.checker.evaluate), and sentences per second."""

from __future__ import annotations

import os
import platform
import sys
import time

from charla.tutor.checker.base import MODULES
from charla.tutor.checker.evaluate import check_all, corpus, score


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
