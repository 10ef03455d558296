"""The roleplay missions catalog: every shipped language loads and validates, meets its count, fits WhatsApp's
list limits, and each mission's sample dialogue meets every criterion (the deterministic checks work)."""

from __future__ import annotations

import pytest

from charla.channels.meta import graph
from charla.journey import missions_catalog as catalog
from charla.store.profile import CEFR

# The fewest missions each target language ships with (issue 21).
AT_LEAST = {"es": 12, "en": 8}


def test_every_target_language_with_missions_meets_its_count() -> None:
    assert set(AT_LEAST) <= set(catalog.languages())
    for lang, least in AT_LEAST.items():
        loaded = catalog.load(lang)
        assert loaded is not None, lang
        assert len(loaded.missions) >= least, lang


@pytest.mark.parametrize("lang", catalog.languages())
def test_every_mission_has_its_fields_valid_levels_and_a_unique_id(lang: str) -> None:
    loaded = catalog.load(lang)
    assert loaded is not None
    ids = [m.id for m in loaded.missions]
    assert len(ids) == len(set(ids)), f"duplicate ids in {lang}"
    for m in loaded.missions:
        assert m.levels, m.id
        assert all(level in CEFR for level in m.levels), m.id
        assert len(m.title) <= graph.ROW_TITLE, m.id
        assert len(m.row()) <= graph.ROW_DESCRIPTION, m.id
        assert all([m.setting, m.counterpart, m.goal, m.opening, m.closing, m.phrases]), m.id
        assert len(m.sample) < m.max_turns, f"{m.id}: its sample must fit in its turns"
        assert len({c.id for c in m.criteria}) == len(m.criteria), m.id
        assert all(c.prompt and c.says for c in m.criteria), m.id


@pytest.mark.parametrize("lang", catalog.languages())
def test_each_sample_dialogue_meets_every_criterion_and_nothing_is_met_by_a_greeting(lang: str) -> None:
    loaded = catalog.load(lang)
    assert loaded is not None
    for m in loaded.missions:
        met = {criterion for line in m.sample for criterion in m.met(line)}
        assert met == {c.id for c in m.criteria}, f"{lang}/{m.id}: the sample misses {set(m.missing(list(met)))}"
        assert m.met("Hola" if lang == "es" else "Hello") == [], m.id


def test_the_list_is_at_most_ten_rows_closest_to_the_level_first() -> None:
    a1 = catalog.for_level("es", "A1")
    assert len(a1) == catalog.LIST_MAX == graph.MAX_ROWS
    assert "A1" in a1[0].levels
    assert all("C1" not in m.levels for m in a1)
    b2 = catalog.for_level("es", "B2")
    assert "B2" in b2[0].levels
    assert catalog.for_level("fr", "B1") == []  # no missions for that language: none offered


def test_a_mission_is_found_by_id_or_by_a_word_of_its_title() -> None:
    assert [catalog.find("es", w).id for w in ("cafe", "cafetería", "mercado")] == ["cafe", "cafe", "mercado"]  # type: ignore[union-attr]
    assert catalog.find("en", "at the market").id == "market"  # type: ignore[union-attr]
    assert catalog.find("en", "spaceship") is None


def test_a_broken_catalog_is_refused_with_what_is_wrong() -> None:
    good = catalog.load("es")
    assert good is not None
    data = good.missions[0].model_dump()
    with pytest.raises(ValueError, match="CEFR"):
        catalog.Mission.model_validate({**data, "levels": ["B1", "A1"]})
    with pytest.raises(ValueError, match="at most 24"):
        catalog.Mission.model_validate({**data, "title": "A title far too long for a list row"})
    broken = {**data["criteria"][0], "patterns": ["(unclosed"]}
    with pytest.raises(ValueError, match=r"unclosed|missing"):
        catalog.Criterion.model_validate(broken)
