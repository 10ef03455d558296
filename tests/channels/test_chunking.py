"""Chunking properties (hypothesis) and examples."""

from __future__ import annotations

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from charla.channels.chunking import formatting_spans, split_text, utf16_len

WORDS = st.sampled_from(["hola", "qué", "tal", "estás", "subjuntivo", "ser", "estar", "café", "niño",
                         "👩‍👩‍👧", "🇪🇸", "👍🏽", "é", "a\u0301", "漢字", "…", "🙂"])
SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "! ", "? ", ", "])


@st.composite
def messages(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 120))):
        word = draw(WORDS)
        style = draw(st.sampled_from(["", "", "", "*", "_", "~"]))
        if style:
            word = style + " ".join(draw(st.lists(WORDS, min_size=1, max_size=4))) + style
        pieces.append(word + draw(SEPARATORS))
    return "".join(pieces)


def boundaries(text: str) -> set[int]:
    return {0} | {m.end() for m in regex.finditer(r"\X", text, regex.DOTALL)}


@settings(max_examples=300, deadline=None)
@given(messages(), st.integers(min_value=8, max_value=300))
def test_parts_fit_join_back_and_break_nothing(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(part for part in parts)
    assert all(utf16_len(part) <= limit for part in parts)
    cut_points, position = [], 0
    for part in parts[:-1]:
        position += len(part)
        cut_points.append(position)
    graphemes = boundaries(text)
    assert all(cut in graphemes for cut in cut_points)  # no emoji, flag or accent split
    for start, end in formatting_spans(text):
        if utf16_len(text[start:end]) <= limit:
            assert not any(start < cut < end for cut in cut_points), (start, end)


def test_short_text_is_one_part() -> None:
    assert split_text("hola", 4096) == ["hola"]
    assert split_text("", 4096) == []


def test_prefers_paragraphs_then_sentences() -> None:
    text = "Primera frase. Segunda frase.\n\nOtro párrafo que sigue."
    assert split_text(text, 40) == ["Primera frase. Segunda frase.\n\n", "Otro párrafo que sigue."]
    assert split_text("Uno dos tres. Cuatro cinco seis.", 20) == ["Uno dos tres. ", "Cuatro cinco seis."]


def test_keeps_formatting_spans_whole() -> None:
    text = "Mira esto: *el subjuntivo se usa tras deseos* y ya."
    parts = split_text(text, 40)
    assert parts == ["Mira esto: ", "*el subjuntivo se usa tras deseos* y ya."]


def test_counts_utf16_units() -> None:
    assert utf16_len("🇪🇸") == 4
    assert split_text("🇪🇸🇪🇸🇪🇸", 8) == ["🇪🇸🇪🇸", "🇪🇸"]
