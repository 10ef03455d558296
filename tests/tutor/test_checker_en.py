"""The English learner-error checker on real sentences: each rule fires on a Spanish speaker's typical error
with the right correction, correct sentences get no finding, and the held-out corpus keeps a precision floor."""

from __future__ import annotations

import time

import pytest

from charla.core.catalog import say
from charla.tutor.checker.base import check
from charla.tutor.checker.evaluate import check_all, corpus, score
from charla.tutor.prompt import CATEGORY_NAMES


def fixes(text: str) -> list[tuple[str, str, str]]:
    return [(f.original, f.corrected, f.category) for f in check(text, "en")]


@pytest.mark.parametrize(("text", "expected"), [
    ("My cousin live in Quito.", ("live", "lives", "third_person_s")),
    ("He don't eat meat.", ("don't", "doesn't", "third_person_s")),
    ("Does she wants a coffee?", ("wants", "want", "third_person_s")),
    ("We no understand the question.", ("no understand", "don't understand", "do_support")),
    ("Where they study?", ("they study", "do they study", "do_support")),
    ("Last weekend I visit my grandparents.", ("visit", "visited", "past_forms")),
    ("She bringed a cake.", ("bringed", "brought", "past_forms")),
    ("They didn't saw the sign.", ("saw", "see", "past_forms")),
    ("I know her since 2012.", ("know", "have known", "present_perfect")),
    ("It was a awful day.", ("a awful", "an awful", "articles")),
    ("He is architect.", ("architect", "an architect", "articles")),
    ("I have three cousin.", ("cousin", "cousins", "plurals")),
    ("It depends of you.", ("depends of", "depends on", "prepositions")),
    ("I am so boring at work.", ("boring", "bored", "ed_ing_adjectives")),
    ("My daughter has 4 years.", ("has 4 years", "is 4 years old", "transfer")),
    ("Can you explain him the plan?", ("explain him", "explain to him", "transfer")),
    ("I assisted to a wedding.", ("assisted to", "attended", "false_friend")),
    ("I love my city, I speak french every day.", ("french", "French", "spelling")),
])
def test_a_rule_corrects_a_typical_error(text: str, expected: tuple[str, str, str]) -> None:
    assert fixes(text) == [expected]


@pytest.mark.parametrize("text", [
    "She lives in Quito and works in a bank.", "Does she want a coffee?", "I have lived here since 2012.",
    "Let it go.", "Make it work.", "I study for two hours every day.", "Since I was tired, I went home.",
    "I painted the wall white.", "I have 20 years of experience.", "Can he swim?", "I remember the party last year.",
    "My phone number is on the card.", "It was an honor.", "A university is a big place.", "Actually, I disagree.",
    "The life of my grandmother was hard.", "We make the most of the time we have.", "Tell me what you think.",
])
def test_a_correct_sentence_gets_no_finding(text: str) -> None:
    assert check(text, "en") == []


def test_a_finding_is_its_span_as_written_and_explained_in_three_languages() -> None:
    text = "Yesterday  I  go to the beach."
    [finding] = check(text, "en")
    assert text[finding.start:finding.end] == finding.original == "go"
    assert finding.corrected == "went"
    assert finding.rule == "check.en.past_marker"
    for lang in ("en", "es", "pt"):
        explained = say(finding.rule, lang, **finding.values)
        assert "went" in explained
        assert "Yesterday" in explained


def test_every_category_the_checker_uses_has_a_name() -> None:
    rows = corpus("en")
    categories = {row.category for row in rows if row.category}
    found = {f.category for row in rows for f in check(row.sentence, "en")}
    assert categories | found <= set(CATEGORY_NAMES)


def test_the_corpus_is_big_enough_and_keeps_a_held_out_part() -> None:
    rows = corpus("en")
    errors, correct = [r for r in rows if r.original], [r for r in rows if not r.original]
    assert len(errors) >= 150
    assert len(correct) >= 50
    assert all(r.original in r.sentence for r in errors)
    assert sum(r.split == "held" for r in rows) >= 0.3 * len(rows)


def test_held_out_precision_and_recall_floors() -> None:
    held = corpus("en", "held")
    scored = score(held, check_all("en", [r.sentence for r in held]))
    assert float(str(scored["precision"])) >= 0.9
    assert float(str(scored["recall"])) >= 0.5
    assert [r.sentence for r in corpus("en") if not r.original and check(r.sentence, "en")] == []


def test_it_checks_at_least_200_sentences_a_second() -> None:
    sentences = [row.sentence for row in corpus("en")]
    check("", "en")
    began = time.perf_counter()
    for text in sentences:
        check(text, "en")
    assert len(sentences) / (time.perf_counter() - began) >= 200
