"""Dictation grading (charla.journey.wordmarks) and the listening catalog (charla.journey.listening_bank): word
marks on typed answers with typos, accent slips, missing, extra and wrong words; the WhatsApp rendering; the
catalog's size, levels and one right answer per question; and how a sentence is picked for a learner."""

from __future__ import annotations

import pytest

from charla.journey import listening_bank as catalog
from charla.journey.dictation import marked, result
from charla.journey.wordmarks import grade
from charla.store.profile import CEFR, Profile, Word
from charla.tutor import commands


def kinds(reference: str, typed: str) -> list[tuple[str, str, str]]:
    return [(m.kind, m.expected, m.typed) for m in grade(reference, typed).marks]


def test_a_typo_an_accent_slip_and_a_missing_word_are_marked_apart() -> None:
    assert kinds("Ayer comí paella con mis amigos.", "ayer comi paela con amigos") == [
        ("ok", "Ayer", "ayer"), ("accent", "comí", "comi"), ("almost", "paella", "paela"), ("ok", "con", "con"),
        ("missing", "mis", ""), ("ok", "amigos", "amigos")]


def test_extra_and_wrong_words_and_short_words_are_never_typos() -> None:
    assert kinds("I have been waiting for the doctor.", "I been waiting for the the docter") == [
        ("ok", "I", "I"), ("missing", "have", ""), ("ok", "been", "been"), ("ok", "waiting", "waiting"),
        ("ok", "for", "for"), ("extra", "", "the"), ("ok", "the", "the"), ("almost", "doctor", "docter")]
    assert kinds("Tengo mis libros", "Tengo mi libros")[1] == ("wrong", "mis", "mi")  # one letter, a short word
    assert kinds("El tren sale", "El coche sale")[1] == ("wrong", "tren", "coche")


def test_case_punctuation_and_curly_apostrophes_do_not_count() -> None:
    graded = grade("Could you tell me where the station is? It's late.",
                   "could you tell me where the station is its late")
    assert [m.kind for m in graded.marks].count("ok") == 9  # "its" for "It's" is a typo
    assert grade("It’s ten o'clock.", "it's ten o’clock").score == 100


def test_score_counts_accents_and_typos_partly_and_extra_words_against() -> None:
    assert grade("El café está muy caliente.", "el cafe esta muy caliente").score == 90  # 3 + 2 × 0.75 of 5
    assert grade("uno dos", "uno dos tres").score == 67
    assert grade("uno dos", "").score == 0


def test_the_reply_shows_each_difference_in_whatsapp_formatting() -> None:
    graded = grade("Ayer comí paella con mis amigos.", "ayer comi paela con amigos")
    assert marked(graded) == "Ayer ~comi~ *comí* ~paela~ *paella* con *mis* amigos"
    text = result(graded, "en")
    assert "*Dictation: 71%*" in text
    assert "(4 of 6 words right)" in text
    assert "Accents: comi → comí" in text
    assert "Almost (a typo): paela → paella" in text
    assert "Missing: mis" in text
    assert result(grade("Hola amigo", "hola amigo"), "es").endswith("¡Perfecto, todas las palabras!")


@pytest.mark.parametrize("language", ["es", "en"])
def test_the_catalog_has_every_level_and_valid_questions(language: str) -> None:
    found = catalog.bank(language)
    assert found is not None
    assert sum(len(s) for s in found.dictation.values()) >= 20
    assert set(found.dictation) == set(CEFR[:5]) == {p.level for p in found.passages}
    for sentences in found.dictation.values():
        for sentence in sentences:
            assert commands.parse(sentence) is None, f"{sentence!r} would be taken for a command"
    for passage in found.passages:
        assert 2 <= len(passage.questions) <= 3
        assert all(commands.parse(o) is None for q in passage.questions for o in q.options)
    assert catalog.bank("fr") is None


def test_a_question_needs_exactly_one_right_option() -> None:
    with pytest.raises(ValueError, match="one of its distinct options"):
        catalog.Question(question="?", options=("a", "b"), answer=2)
    with pytest.raises(ValueError, match="longer than 24"):
        catalog.Question(question="?", options=("a", "b" * 25), answer=0)


def test_a_sentence_with_a_weak_word_comes_first_and_done_ones_wait() -> None:
    found = catalog.bank("es")
    assert found is not None
    learner = Profile(level="A2")
    first = catalog.pick_sentence(found, "A2", learner)
    assert first == found.dictation["A2"][0]
    learner.listening.saw(catalog.sentence_id(first))
    assert catalog.pick_sentence(found, "A2", learner) == found.dictation["A2"][1]
    learner.vocabulary["abuela"] = Word(strength=0.2)
    assert "abuela" in catalog.pick_sentence(found, "A2", learner)
    assert catalog.level_of(Profile(level="C2")) == "C1"
    assert catalog.level_of(Profile(), "b1") == "B1"
    assert catalog.level_of(Profile()) == "A2"
