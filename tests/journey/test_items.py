"""The placement catalogs (charla/journey/data/placement/*.yaml) and the placement's pure rules: every item has
exactly one correct answer among its options, a level and an explanation; ids are unique; both shipped
languages cover every band; "I don't know" moves down like a wrong answer; grading is deterministic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from charla.journey import items, placement
from charla.journey.items import BANDS, Catalog, Item

SHIPPED = ("en", "es")


def raw(language: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((items.DATA / f"{language}.yaml").read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("language", SHIPPED)
def test_every_item_has_one_correct_answer_a_level_and_an_explanation(language: str) -> None:
    cat = items.catalog(language)
    assert cat.language == language
    assert cat.version >= 1
    for item in cat.items:
        assert item.level in BANDS
        assert len(item.explanation) >= 10
        assert item.prompt
        if item.kind == "free":
            assert not item.options
            assert not item.answer
        else:
            assert item.options.count(item.answer) == 1, item.id
            assert all(len(option) <= items.OPTION_CHARS for option in item.options), item.id
    ids = [item.id for item in cat.items]
    assert len(ids) == len(set(ids))
    assert all(i.startswith(f"{language}-") for i in ids)


@pytest.mark.parametrize("language", SHIPPED)
def test_each_language_is_complete_across_a1_to_c1(language: str) -> None:
    cat = items.catalog(language)
    assert sum(item.kind != "free" for item in cat.items) >= 30
    for band in BANDS:
        kinds = {item.kind for item in cat.closed(band)}
        assert len(cat.closed(band)) >= 6, band
        assert kinds == {"gap", "reading"}, band
    assert {item.level for item in cat.free()} == {"A2", "B2"}
    assert items.languages() == sorted(SHIPPED)


def test_an_item_with_no_or_two_correct_answers_is_refused() -> None:
    good = {"id": "es-x-1", "level": "A1", "kind": "gap", "prompt": "Yo ___ aquí.", "options": ["soy", "estoy"],
            "answer": "estoy", "explanation": "Location takes estar."}
    Item.model_validate(good)
    for broken in ({"answer": "es"}, {"options": ["estoy", "estoy"]}, {"explanation": ""}, {"level": "C2"},
                   {"options": ["estoy", "una respuesta demasiado larga"]}):
        with pytest.raises(ValidationError):
            Item.model_validate({**good, **broken})
    data = raw("es")
    with pytest.raises(ValidationError):  # a repeated id
        Catalog.model_validate({**data, "items": [*data["items"], data["items"][0]]})


def test_the_catalog_files_name_their_language() -> None:
    assert sorted(Path(p).stem for p in items.DATA.glob("*.yaml")) == list(SHIPPED)
    assert all(raw(language)["language"] == language for language in SHIPPED)


def test_the_path_adapts_and_i_dont_know_counts_as_wrong() -> None:
    assert placement.moved(1, True) == 2
    assert placement.moved(1, False) == 0
    assert placement.moved(0, False) == 0
    assert placement.moved(4, True) == 4
    cat = items.catalog("es")
    first = placement.pick(cat, placement.START, [])
    assert first is not None
    assert first.level == "A2"
    third = placement.pick(cat, 2, ["a", "b"])  # the third question is a reading where the band has one
    assert third is not None
    assert third.kind == "reading"
    assert third.level == "B1"
    assert placement._typed(first, "No lo sé") == placement.IDK
    assert placement._typed(first, "ni idea") == "idk"
    assert placement._typed(first, first.answer.upper()) == str(first.options.index(first.answer))
    assert placement._typed(first, "Hola, ¿qué tal?") is None  # not an answer: tutored


def test_the_level_is_the_highest_band_answered_right_half_the_time_nudged_by_the_free_answer() -> None:
    oscillating = [["A2", True], ["B1", True], ["B2", False], ["B1", True], ["B2", False], ["B1", True]]
    assert placement.closed_level(oscillating) == "B1"
    assert placement.closed_level([["A2", False], ["A1", False]]) == "A1"
    assert placement.closed_level([["B2", True], ["C1", False], ["B2", False]]) == "B2"  # 1 of 2
    assert placement.closed_level([["B2", True], ["C1", False], ["B2", False], ["B2", False]]) == "A1"
    assert placement.free_level(24, 0) == "B1"
    assert placement.free_level(45, 1) == "C1"
    assert placement.free_level(30, 9) == "A1"
    assert placement.free_level(30, 6) == "A2"
    assert placement.free_level(0, 0) == "A1"
    assert placement.measured(oscillating, "B1") == "B1"
    assert placement.measured(oscillating, "C1") == "B2"
    assert placement.measured(oscillating, "A1") == "A2"
