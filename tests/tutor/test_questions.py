"""The content bank of follow-up questions: complete per band and language, well formed, level-true."""

from __future__ import annotations

import pytest

from charla.tutor import guard, questions


@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_band_has_at_least_ten_questions_in_the_language(lang: str) -> None:
    found = questions.bank(lang)
    for band in questions.BANDS:
        at_band = [q for q in found if q.band == band]
        assert len(at_band) >= 10, band
        assert all(q.text.endswith("?") or q.text.endswith(".") for q in at_band)
        assert all(guard.language_of(q.text) in (None, lang) for q in at_band), band
    assert len({q.text for q in found}) == len(found)  # no duplicates


def test_a_follow_up_fits_the_level_and_topic_and_is_not_asked_twice() -> None:
    first = questions.follow_up("es", "B1", "travel")
    assert first in {q.text for q in questions.bank("es") if q.band == "B1" and q.topic == "travel"}
    second = questions.follow_up("es", "B1", "travel", asked=[first])
    assert second != first
    assert questions.follow_up("es", None, None) in {q.text for q in questions.bank("es") if q.band == "A2"}
    assert questions.follow_up("es", "C2", None) in {q.text for q in questions.bank("es") if q.band == "C1"}
    assert questions.follow_up("fr", "A1", None) in {q.text for q in questions.bank("en")}  # no French bank yet
