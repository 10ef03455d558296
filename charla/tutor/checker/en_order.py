"""English checker rules on word order, spelling and agreement with there is: a car red, Why he is sad?,
I go always, I like very much football, english / monday / i, common misspellings, there is many people."""

from __future__ import annotations

from collections.abc import Iterator

from charla.core.catalog import N_
from charla.tutor.checker import en_words as w
from charla.tutor.checker.en_tokens import Hit, Sentence, hit
from charla.tutor.checker.en_transfer import _ADVERBS, _COLORS, _INDIRECT, _LIKE, _MISSPELLINGS, _RESULT_VERBS, RULES_A

_BE = {"am", "is", "are", "was", "were", "can", "will", "could", "should"}


def adjective_order(s: Sentence) -> Iterator[Hit]:
    """a car red: the adjective goes before the noun."""
    for i, tok in enumerate(s.toks[:-2]):
        noun, adjective, after = s.low(i + 1), s.low(i + 2), s.low(i + 3)
        if tok.low in {"a", "an"} and w.singular_noun(noun) and adjective in _COLORS and \
                after in {"", ".", ",", "!", "?", "near", "in", "with", "and", "for", "on"} and \
                (w.verb_lemma(s.low(i - 1)) or s.low(i - 1)) not in _RESULT_VERBS:
            article = "an" if w.vowel_sound(adjective) else "a"
            yield hit(i, i + 2, f"{article} {s.toks[i + 2].text} {s.toks[i + 1].text}", "word_order",
                      N_("check.en.adjective_order"))


def question_order(s: Sentence) -> Iterator[Hit]:
    """Why he is sad? / I don't know where is it: the verb before the subject in a question, after it in an
    indirect one."""
    if s.question and s.low(0) in w.WH - {"who"}:
        i = 1 + (s.low(1) in {"time", "much", "many", "old"})
        if s.low(i) in w.SUBJECTS and s.low(i + 1) in _BE:
            yield hit(i, i + 1, f"{s.toks[i + 1].text} {_pronoun(s, i)}", "word_order", N_("check.en.question_order"))
    for i, tok in enumerate(s.toks[1:-2], 1):
        if s.low(i - 1) in _INDIRECT and tok.low in w.WH and s.low(i + 1) in {"is", "are", "was", "were"} and \
                s.low(i + 2) in w.SUBJECTS and s.low(i + 3) in {"", ".", "!", "?"}:
            yield hit(i + 1, i + 2, f"{_pronoun(s, i + 2)} {s.toks[i + 1].text}", "word_order",
                      N_("check.en.indirect_question"))


def _pronoun(s: Sentence, i: int) -> str:
    return "I" if s.low(i) == "i" else s.low(i)


def adverb_position(s: Sentence) -> Iterator[Hit]:
    """I go always / I eat never meat: frequency adverbs go before the main verb."""
    for i, tok in enumerate(s.toks[:-2]):
        verb, adverb = s.toks[i + 1], s.low(i + 2)
        if tok.low in w.SUBJECTS and adverb in _ADVERBS and verb.low not in {*w.BE_PRESENT, *w.MODALS, "do", "does"} \
                and (w.base_verb(verb.low) or w.third_form(verb.low)) and s.low(i - 1) not in w.AUXILIARIES:
            yield hit(i + 1, i + 2, f"{adverb} {verb.text}", "word_order", N_("check.en.adverb_position"))


def very_much(s: Sentence) -> Iterator[Hit]:
    """I like very much football: very much goes after what is liked."""
    for i, tok in enumerate(s.toks[:-3]):
        if tok.low in _LIKE and s.low(i + 1) == "very" and s.low(i + 2) == "much" and s.toks[i + 3].word:
            end = next((j for j in range(i + 3, len(s.toks)) if not s.toks[j].word), len(s.toks)) - 1
            if end - i <= 6:
                thing = s.text_words(i + 3, end)
                yield hit(i, end, f"{tok.text} {thing} very much", "word_order", N_("check.en.very_much"))


def capitals(s: Sentence) -> Iterator[Hit]:
    """english, monday, i: languages, nationalities, days, months and I take a capital; and misspellings."""
    for i, tok in enumerate(s.toks):
        if tok.text in w.LANGUAGES | w.WEEKDAYS | w.MONTHS or tok.text == "i":
            yield hit(i, i, tok.text.capitalize(), "spelling", N_("check.en.capital"))
        elif tok.low in _MISSPELLINGS:
            yield hit(i, i, _MISSPELLINGS[tok.low], "spelling", N_("check.en.misspelling"))


def there_are(s: Sentence) -> Iterator[Hit]:
    """there is many people / this shoes: plural nouns take there are and these."""
    for i, tok in enumerate(s.toks[:-2]):
        counted = s.low(i + 2) in w.NUMBERS - {"these", "those", "both"} or (s.low(i + 2).isdigit() and \
            s.low(i + 2) not in {"1", "0"})
        if tok.low == "there" and s.low(i + 1) in {"is", "was", "'s"} and counted:
            yield hit(i + 1, i + 1, "were" if s.low(i + 1) == "was" else "are", "number_agreement",
                      N_("check.en.there_are"))
        elif tok.low in {"this", "that"} and s.low(i + 2) in {"are", "were"} and s.low(i + 1).endswith("s") and \
                w.lemmas(s.low(i + 1)).get("NOUN", ("",))[0] != s.low(i + 1):
            yield hit(i, i, "these" if tok.low == "this" else "those", "number_agreement", N_("check.en.this_these"))


RULES = (*RULES_A, adjective_order, question_order, adverb_position, very_much, capitals, there_are)
