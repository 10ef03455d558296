"""Spanish rules on noun phrases: gender and number agreement of determiners and adjectives, articles
(el agua, me gusta el café, al/del, no article before a bare profession) and adjective position."""

from __future__ import annotations

from collections.abc import Iterator

from charla.tutor.checker.base import Finding
from charla.tutor.checker.es_lexicon import (
    ADJECTIVES,
    COLORS_AND_NATIONALITIES,
    DET_FORMS,
    DET_READING,
    POSSESSIVE_NUMBER,
    POSSESSIVE_PAIR,
    PROFESSIONS,
    STRESSED_A,
)
from charla.tutor.checker.es_text import PUNCT, Sentence, noun, plural


def _adjective(word: str) -> tuple[str, str, str] | None:
    """(masculine singular, gender, number) of a four-form adjective of the lexicon."""
    for ending, gender, number in (("os", "Masc", "Plur"), ("as", "Fem", "Plur"), ("o", "Masc", "Sing"),
                                   ("a", "Fem", "Sing")):
        if word.endswith(ending) and word[: -len(ending)] + "o" in ADJECTIVES:
            return word[: -len(ending)] + "o", gender, number
    return None


def adjective_form(base: str, gender: str, number: str) -> str:
    return base[:-1] + {("Masc", "Sing"): "o", ("Fem", "Sing"): "a", ("Masc", "Plur"): "os",
                        ("Fem", "Plur"): "as"}[(gender, number)]


def _noun_number(found: tuple[str, str, str], det_number: str) -> str:
    return det_number if found[2] == "Any" else found[2]


def determiners(s: Sentence) -> Iterator[Finding]:
    """la problema → el problema; mi amigos → mis amigos; los libro → los libros; la agua → el agua."""
    for i in range(len(s) - 1):
        found = noun(s.low(i + 1))
        if found is None:
            continue
        if s.low(i) in DET_READING:
            yield from _determiner(s, i, found)
        elif s.low(i) in POSSESSIVE_NUMBER:
            yield from _possessive(s, i, found)


def _determiner(s: Sentence, i: int, found: tuple[str, str, str]) -> Iterator[Finding]:
    family, gender, number = DET_READING[s.low(i)]
    singular, noun_gender, noun_number = found[0], found[1], _noun_number(found, number)
    if singular in STRESSED_A and noun_number == "Sing" and family in ("art", "indef"):
        if gender == "Fem":
            right = "el" if family == "art" else "un"
            yield s.finding(i, i + 1, f"{right} {s.word(i + 1)}", "articles", "stressed_a", noun=singular)
        return
    if gender != noun_gender and number == noun_number and not _paired(singular):
        right = DET_FORMS[family][(noun_gender, number)]
        yield s.finding(i, i + 1, f"{right} {s.word(i + 1)}", "gender_agreement", "gender_det", noun=singular)
    elif gender == noun_gender and number != noun_number:
        yield s.finding(i, i + 1, f"{DET_FORMS[family][(gender, 'Plur')]} {plural(singular)}", "number_agreement",
                        "number_det", noun=singular)


def _paired(singular: str) -> bool:
    """amigo/amiga, señor/señora: the determiner may be the word the learner meant."""
    counterparts = {singular[:-1] + "a", singular[:-1] + "o", singular + "a", singular[:-1]}
    return any(noun(word) is not None for word in counterparts - {singular})


def _possessive(s: Sentence, i: int, found: tuple[str, str, str]) -> Iterator[Finding]:
    number = POSSESSIVE_NUMBER[s.low(i)]
    noun_number = _noun_number(found, number)
    if number == noun_number:
        return
    det = s.low(i) if number == "Plur" else POSSESSIVE_PAIR[s.low(i)]
    yield s.finding(i, i + 1, f"{det} {plural(found[0])}", "number_agreement", "number_det", noun=found[0])


def adjectives(s: Sentence) -> Iterator[Finding]:
    """una casa bonito → una casa bonita; la casa es bonito → la casa es bonita (sentence subject)."""
    for i in range(1, len(s) - 1):
        found = noun(s.low(i))
        if found is None or not (s.low(i - 1) in DET_READING or s.low(i - 1) in POSSESSIVE_NUMBER):
            continue
        if "y" in (s.low(i - 2), s.low(i + 1), s.low(i + 2)):
            continue  # coordinated nouns agree together
        after = i + 1
        if i == 1 and s.low(2) in ("es", "son", "era", "eran", "está", "están", "parece", "parecen"):
            after = 4 if s.low(3) in ("muy", "tan", "bastante") else 3
        yield from _agree(s, i, after, found)


def _agree(s: Sentence, i: int, at: int, found: tuple[str, str, str]) -> Iterator[Finding]:
    adjective = _adjective(s.low(at))
    if adjective is None or s.low(at + 1) == "y":
        return
    number = found[2] if found[2] != "Any" else adjective[2]
    if (adjective[1], adjective[2]) != (found[1], number):
        right = adjective_form(adjective[0], found[1], number)
        yield s.finding(at, at, right, "gender_agreement" if adjective[2] == number else "number_agreement",
                        "adjective_agreement", noun=found[0])


def _color_forms() -> set[str]:
    forms = set()
    for word in COLORS_AND_NATIONALITIES:
        forms |= {word, plural(word)}
        if word.endswith("o"):
            forms |= {word[:-1] + end for end in ("a", "as")}
        elif word[-1] in "lsn":
            feminine = word.translate(str.maketrans("áéíóú", "aeiou")) + "a"
            forms |= {feminine, feminine + "s"}
    return forms


COLOR_FORMS = _color_forms()


def word_order(s: Sentence) -> Iterator[Finding]:
    """un rojo coche → un coche rojo: colours and nationalities follow the noun."""
    for i in range(1, len(s) - 1):
        after_determiner = s.low(i - 1) in DET_READING or s.low(i - 1) in POSSESSIVE_NUMBER
        if s.low(i) in COLOR_FORMS and after_determiner and noun(s.low(i + 1)) is not None:
            yield s.finding(i, i + 1, f"{s.low(i + 1)} {s.low(i)}", "word_order", "adjective_position",
                            adjective=s.low(i))


_LIKE = {"gusta": "Sing", "encanta": "Sing", "interesa": "Sing", "gustan": "Plur", "encantan": "Plur",
         "interesan": "Plur"}


def articles(s: Sentence) -> Iterator[Finding]:
    """me gusta café → me gusta el café; a el parque → al parque; soy un profesor. → soy profesor."""
    for i in range(len(s) - 1):
        yield from _liking(s, i)
        yield from _contraction(s, i)
        yield from _profession(s, i)


def _liking(s: Sentence, i: int) -> Iterator[Finding]:
    found = noun(s.low(i + 1))
    if s.low(i) in _LIKE and s.low(i - 1) in ("me", "te", "le", "nos", "les") and found:
        gender, number = found[1], found[2] if found[2] != "Any" else _LIKE[s.low(i)]
        if number == _LIKE[s.low(i)] and s.word(i + 1).islower():
            article = "el" if found[0] in STRESSED_A and number == "Sing" else DET_FORMS["art"][(gender, number)]
            yield s.finding(i + 1, i + 1, f"{article} {s.word(i + 1)}", "articles", "article_general",
                            noun=found[0])


def _contraction(s: Sentence, i: int) -> Iterator[Finding]:
    followed_by_noun = (noun(s.low(i + 2)) or s.pos(i + 2) == "NOUN") and s.word(i + 2).islower()
    if s.low(i) in ("a", "de") and s.word(i + 1) == "el" and followed_by_noun:
        right = "al" if s.low(i) == "a" else "del"
        yield s.finding(i, i + 1, right, "articles", "contraction", word=right)


def _profession(s: Sentence, i: int) -> Iterator[Finding]:
    bare = s.low(i + 2) in PROFESSIONS and (s.word(i + 3) in PUNCT or i + 3 >= len(s))
    if s.low(i) in ("soy", "eres", "somos") and s.low(i + 1) in ("un", "una", "unos", "unas") and bare:
        yield s.finding(i, i + 2, f"{s.word(i)} {s.word(i + 2)}", "articles", "article_profession",
                            noun=s.low(i + 2))
