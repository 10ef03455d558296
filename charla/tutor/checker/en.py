"""The English checker (target language English, learners mostly Spanish speakers): deterministic rules over
lemminflect's word tables and closed word lists, each firing only on a pattern it is sure of. No English spaCy
pipeline ships on the package index (en-core-web-sm is on GitHub releases only), so there is no tagger: rules
look at words and their neighbours, which keeps them fast and predictable."""

from __future__ import annotations

from charla.tutor.checker import en_nouns, en_order, en_verbs
from charla.tutor.checker.base import Finding
from charla.tutor.checker.en_tokens import Hit, Rule, Sentence, same_case, sentences

RULES: tuple[Rule, ...] = (*en_verbs.RULES, *en_nouns.RULES, *en_order.RULES)


def check(text: str) -> list[Finding]:
    """Every error the English rules are sure of in `text`, in text order, overlapping findings dropped."""
    found: list[Finding] = []
    for sentence in sentences(text):
        for rule in RULES:
            found += (_finding(text, sentence, h) for h in rule(sentence))
    return _without_overlaps(found)


def _finding(text: str, sentence: Sentence, h: Hit) -> Finding:
    start, end = sentence.toks[h.first].start, sentence.toks[h.last].end
    original = text[start:end]
    corrected = same_case(original, h.corrected)
    return Finding(original, corrected, h.category, h.rule, start, end,
                   {"original": original, "corrected": corrected, **h.values})


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    """The first finding (in rule order) for each stretch of text: two rules never correct the same words."""
    kept: list[Finding] = []
    for f in found:
        if all(f.end <= k.start or f.start >= k.end for k in kept) and f.corrected != f.original:
            kept.append(f)
    return sorted(kept, key=lambda f: (f.start, f.end))
