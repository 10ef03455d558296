"""Tokens and hits of the English checker: words with their offsets, split into sentences, and what a rule
reports (a token range, its correction, category, rule and values) before it becomes a Finding."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[A-Za-zÀ-ÿ]+(?:'[A-Za-z]+)?|'[A-Za-z]+|\d+(?:[.,:]\d+)*|[^\sA-Za-zÀ-ÿ\d]")
_END = {".", "!", "?"}


@dataclass(frozen=True)
class Tok:
    """One token as written (`text`), lowercased (`low`), and where it is in the checked text."""

    text: str
    low: str
    start: int
    end: int

    @property
    def word(self) -> bool:
        return self.text[0].isalpha()


@dataclass(frozen=True)
class Hit:
    """A rule's report: tokens `first`..`last` (inclusive) of the sentence are wrong; write `corrected`."""

    first: int
    last: int
    corrected: str
    category: str
    rule: str
    values: dict[str, str] = field(default_factory=dict)


Rule = Callable[["Sentence"], Iterator[Hit]]


@dataclass(frozen=True)
class Sentence:
    """The tokens of one sentence (its final punctuation included) and helpers for looking around in it."""

    toks: list[Tok]

    def low(self, i: int) -> str:
        """The lowercased token at `i`, or "" outside the sentence."""
        return self.toks[i].low if 0 <= i < len(self.toks) else ""

    def text_words(self, first: int, last: int) -> str:
        """Tokens `first`..`last` as written, joined by single spaces."""
        return " ".join(t.text for t in self.toks[first:last + 1])

    @property
    def question(self) -> bool:
        return bool(self.toks) and self.toks[-1].text == "?"

    def lows(self) -> list[str]:
        return [t.low for t in self.toks]


def tokens(text: str) -> list[Tok]:
    """The words, numbers and punctuation marks of `text`, with their offsets."""
    return [Tok(m.group(), m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def sentences(text: str) -> list[Sentence]:
    """`text` split after every . ! or ? (a sentence keeps its final mark)."""
    found: list[Sentence] = []
    current: list[Tok] = []
    for tok in tokens(text):
        current.append(tok)
        if tok.text in _END:
            found.append(Sentence(current))
            current = []
    if current:
        found.append(Sentence(current))
    return found


def hit(first: int, last: int, corrected: str, category: str, rule: str, **values: str) -> Hit:
    """A Hit, with the values given as keywords."""
    return Hit(first, last, corrected, category, rule, values)


def same_case(original: str, corrected: str) -> str:
    """`corrected` capitalised like `original` (a sentence-initial "Do she" becomes "Does", not "does")."""
    if original[:1].isupper() and corrected[:1].islower() and not original.isupper():
        return corrected[:1].upper() + corrected[1:]
    return corrected
