"""The placement catalogs (charla/journey/data/placement/*.yaml), the placement's rules and its words: each item
has exactly one correct answer among its options, a level and an explanation; ids are unique; both shipped
languages cover every band; "I don't know" moves down like a wrong answer; grading is deterministic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from charla.journey import items, placement, preferences
from charla.journey.items import BANDS, Catalog, Item
from charla.store.profile import Preferences, Profile, explanation_language, level_to_use
from charla.tutor import commands

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


def test_the_level_to_use_is_the_most_recent_evidence() -> None:
    p = Profile(level="C1", level_inferred="A2")
    assert level_to_use(p) == "C1"  # neither dated: the declared one
    p.confirm("level_inferred")
    assert level_to_use(p) == "A2"
    p.level_measured, p.level_measured_at = "B1", datetime.now(UTC)
    assert level_to_use(p) == "B1"
    p.confirm("level")
    assert level_to_use(p) == "C1"
    assert level_to_use(Profile()) is None
    assert explanation_language(Profile(preferences=Preferences(explanations="mixed")), "en", "es") == "en"
    assert explanation_language(Profile(level="B2", preferences=Preferences(explanations="mixed")), "en", "es") == "es"


@pytest.mark.parametrize(("said", "arg"), [
    ("Test my level", ""), ("placement test", ""), ("Hazme una prueba de nivel", ""),
    ("¿Cuál es mi nivel?", "cual es mi nivel"), ("What's my level?", "what's my level"),
    ("Continue the test", "continue"), ("sigue con la prueba", "sigue"), ("stop the test", "stop")])
def test_placement_is_started_resumed_and_stopped_in_words(said: str, arg: str) -> None:
    assert commands.parse(said) == commands.Command("start", "placement", arg=arg)


@pytest.mark.parametrize(("said", "key"), [
    ("Only important mistakes", "strictness:1"), ("solo errores importantes", "strictness:1"),
    ("correct everything", "strictness:3"), ("corrígeme todo", "strictness:3"),
    ("explain in Spanish", "explanations:target"), ("explícame en inglés", "explanations:native"),
    ("explain in my language", "explanations:native"), ("shorter replies", "length:short"),
    ("respuestas más largas", "length:long"), ("no voice notes", "voice:off"), ("sin audios", "voice:off"),
    ("send me voice notes", "voice:on")])
def test_settings_are_understood_in_plain_words(said: str, key: str) -> None:
    command = commands.parse(said)
    assert command is not None
    assert command.value == "settings"
    assert preferences.from_words(command.arg, "en", "es") == key
