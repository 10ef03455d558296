"""Read-aloud scoring (voice/readaloud.py): alignment, phoneme distance and relative word probability
combined into per-word marks and the three scores; espeak-ng's IPA batched in one call; the bank's choice of
sentence (charla/tutor/reading.py) follows the learner's weak words and band."""

from __future__ import annotations

import shutil

import pytest

from charla.store.profile import Profile
from charla.store.profile import Word as VocabWord
from charla.tutor import reading
from voice import readaloud
from voice.pronounce import Word


def heard(*words: tuple[str, float], pace: float = 0.4) -> list[Word]:
    return [Word(text, i * pace, i * pace + pace * 0.8, p) for i, (text, p) in enumerate(words)]


def fake_ipa(words: list[str], language: str) -> list[str]:
    sounds = {"milk": "mˈɪlk", "mulk": "mˈʌlk", "nine": "nˈaɪn", "9": "nˈaɪn", "tea": "tˈiː", "coffee": "kˈɒfi"}
    return [sounds.get(w.lower(), "") for w in words]


def verdicts(score: readaloud.Score) -> list[tuple[str, str]]:
    return [(m.word, m.verdict) for m in score.marks]


def test_a_clean_reading_is_all_ok_and_scores_high() -> None:
    said = heard(("I", 0.9), ("like", 0.99), ("milk.", 0.98))
    score = readaloud.score("I like milk.", said, "en", fake_ipa)
    assert verdicts(score) == [("I", "ok"), ("like", "ok"), ("milk", "ok")]
    assert (score.accuracy, score.completeness, score.to_repeat) == (1.0, 1.0, [])
    assert score.overall >= 90


def test_a_substituted_word_is_mispronounced_with_the_sounds_that_differ() -> None:
    score = readaloud.score("I like milk", heard(("I", 0.9), ("like", 0.99), ("mulk", 0.5)), "en", fake_ipa)
    milk = score.marks[2]
    assert (milk.verdict, milk.heard, milk.sounds) == ("mispronounced", "mulk", ("ɪ",))
    assert score.to_repeat == ["milk"]
    assert score.accuracy == pytest.approx(0.67, abs=0.01)


def test_a_homophone_or_a_digit_that_sounds_the_same_is_ok() -> None:
    score = readaloud.score("at nine", heard(("at", 0.99), ("9", 0.8)), "en", fake_ipa)
    assert verdicts(score) == [("at", "ok"), ("nine", "ok")]


def test_missed_and_extra_words_are_marked_and_lower_completeness() -> None:
    score = readaloud.score("a cup of coffee", heard(("a", 0.9), ("cup", 0.9), ("big", 0.9), ("coffee", 0.9)),
                            "en", fake_ipa)
    assert ("of", "missed") in verdicts(score) or ("of", "mispronounced") in verdicts(score)
    score = readaloud.score("a cup of coffee", heard(("a", 0.9), ("cup", 0.9), ("coffee", 0.9)), "en", fake_ipa)
    assert verdicts(score) == [("a", "ok"), ("cup", "ok"), ("of", "missed"), ("coffee", "ok")]
    assert score.completeness == 0.75
    score = readaloud.score("a cup", heard(("a", 0.9), ("cup", 0.9), ("please", 0.9)), "en", fake_ipa)
    assert verdicts(score)[-1] == ("please", "extra")
    assert score.completeness == 1.0


def test_probability_counts_against_the_sentence_not_a_flat_threshold() -> None:
    """A middle word far below the sentence's median is flagged (guessed from context); the first and last
    words get more slack, and a sentence heard uncertainly throughout flags nothing."""
    said = heard(("the", 0.45), ("children", 0.3), ("play", 0.97), ("with", 0.98), ("toys", 0.96), ("now", 0.44))
    score = readaloud.score("the children play with toys now", said, "en", fake_ipa)
    assert verdicts(score) == [("the", "ok"), ("children", "mispronounced"), ("play", "ok"), ("with", "ok"),
                               ("toys", "ok"), ("now", "ok")]
    unsure = heard(("the", 0.4), ("children", 0.45), ("play", 0.4), ("with", 0.42), ("toys", 0.4))
    assert readaloud.score("the children play with toys", unsure, "en", fake_ipa).to_repeat == []


def test_fluency_follows_the_speech_rate_and_long_pauses() -> None:
    steady = readaloud.score("one two three four", heard(*[(w, 0.9) for w in ["one", "two", "three", "four"]]),
                             "en", fake_ipa)
    halting = [Word("one", 0, 0.3, 0.9), Word("two", 1.5, 1.8, 0.9), Word("three", 3.0, 3.3, 0.9),
               Word("four", 4.5, 4.8, 0.9)]
    slow = readaloud.score("one two three four", halting, "en", fake_ipa)
    assert steady.fluency == 1.0
    assert steady.pauses == 0
    assert slow.pauses == 3
    assert slow.fluency < 0.5 < steady.fluency


def test_nothing_heard_scores_zero() -> None:
    score = readaloud.score("I like milk", [], "en", fake_ipa)
    assert [m.verdict for m in score.marks] == ["missed"] * 3
    assert score.overall == 0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_ipa_is_one_line_per_word_in_one_call() -> None:
    assert readaloud.ipa(["perro", "pero", "de", "la"], "es") == ["pˈero", "pˈeɾo", "dˈe", "lˈa"]
    assert readaloud.ipa([], "es") == []


def test_the_bank_offers_a_sentence_with_the_learners_weak_words_at_their_band() -> None:
    learner = Profile(level="A1")
    first = reading.choose(learner, "es")
    assert first.band == "A1"
    learner.vocabulary["cocina"] = VocabWord(strength=0.1)
    assert "cocina" in reading.choose(learner, "es").text
    learner.speaking.recent.append(reading.choose(learner, "es").text)
    assert "cocina" not in reading.choose(learner, "es").text  # just read: another one
    learner.speaking.record("x", 50, {"niños": False}, ["ɲ"])
    assert "niños" in reading.choose(learner, "es").text
    assert learner.speaking.sounds == {"ɲ": 1}
    assert reading.choose(Profile(), "xx").text in {s.text for s in reading.bank("en")}
