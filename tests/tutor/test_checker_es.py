"""The Spanish checker: real rules on real sentences, explanations in the learner's language, and a precision
floor on the held-out corpus (sentences no rule was tuned on)."""

from __future__ import annotations

import pytest

from charla.core.catalog import say
from charla.tutor.checker import es
from charla.tutor.checker.base import check
from charla.tutor.checker.evaluate import check_all, corpus, score
from charla.tutor.checker.render import explain


def corrections(text: str) -> list[tuple[str, str, str]]:
    return [(f.original, f.corrected, f.category) for f in check(text, "es")]


def test_ser_with_a_state_becomes_estar_with_its_explanation() -> None:
    (finding,) = check("Yo soy cansado porque trabajo mucho.", "es")
    assert (finding.original, finding.corrected, finding.category) == ("soy cansado", "estoy cansado", "ser_estar")
    assert "Yo soy cansado porque trabajo mucho."[finding.start:finding.end] == finding.original
    assert explain(finding, "en") == "A temporary state such as “cansado” takes estar, not ser: “estoy cansado”."
    assert explain(finding, "es").startswith("Un estado pasajero como «cansado» va con estar")
    assert explain(finding, "pt_BR").startswith("Um estado passageiro")


@pytest.mark.parametrize(("text", "expected"), [
    ("Ayer yo voy a la playa con mi amigos.", [("voy", "fui", "tense"),
                                               ("mi amigos", "mis amigos", "number_agreement")]),
    ("Quiero que tú vienes a la fiesta.", [("vienes", "vengas", "subjunctive")]),
    ("Veo mi madre cada día.", [("mi madre", "a mi madre", "prepositions")]),
    ("La problema es muy difícil.", [("La problema", "El problema", "gender_agreement")]),
    ("Ellos va al cine.", [("va", "van", "verb_conjugation")]),
    ("Mi casa es en Madrid.", [("es", "está", "ser_estar")]),
    ("La agua está fría.", [("La agua", "El agua", "articles")]),
    ("Me gusta café.", [("café", "el café", "articles")]),
    ("Tambien vivo aqui.", [("Tambien", "También", "accents"), ("aqui", "aquí", "accents")]),
    ("Estoy muy embarazado porque olvidé su nombre.", [("embarazado", "avergonzado", "false_friend")]),
    ("Gracias para todo.", [("Gracias para", "Gracias por", "por_para")]),
    ("De niño jugué al fútbol todos los días.", [("jugué", "jugaba", "preterite_imperfect")]),
    ("Tengo un rojo coche.", [("rojo coche", "coche rojo", "word_order")]),
    ("Nesesito hablar espanol.", [("Nesesito", "Necesito", "spelling"), ("espanol", "español", "spelling")]),
])
def test_rules_find_learner_errors(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert corrections(text) == expected


@pytest.mark.parametrize("text", [
    "Me llamo Ana y soy inglesa.", "La fiesta es en mi casa.", "Estoy embarazada de tres meses.",
    "El agua está muy fría.", "Mi hermano es médico.", "Esta mañana fui al mercado.", "Creo que tiene razón.",
    "Gracias por venir.", "Me llamo Juan.", "Él es aburrido.", "Mi amiga es estudiante.", "Voy a comer.",
    "Ella y yo vamos al cine.", "Actualmente vivo en Barcelona.", "No se puede fumar aquí.", "", "¿Qué tal?",
])
def test_correct_sentences_get_no_finding(text: str) -> None:
    assert corrections(text) == []


def test_every_rule_has_an_explanation_in_every_language() -> None:
    found = {f.rule for row in corpus("es") for f in check(row.sentence, "es")}
    assert found <= set(es.EXPLANATIONS)
    for rule in es.EXPLANATIONS:
        for lang in ("en", "es", "pt"):
            assert say(rule, lang, word="x", noun="x", corrected="x", subject="x", trigger="x", phrase="x") != rule


def test_the_corpus_is_big_enough_and_keeps_a_third_aside() -> None:
    rows = corpus("es")
    wrong, right = [r for r in rows if r.original], [r for r in rows if not r.original]
    assert len(wrong) >= 150
    assert len(right) >= 50
    assert len([r for r in rows if r.split == "held"]) >= 0.3 * len(rows)
    assert all(r.original in r.sentence for r in wrong)


def test_precision_floor_on_the_held_split() -> None:
    held = corpus("es", "held")
    result = score(held, check_all("es", [r.sentence for r in held]))
    assert result["precision"] is not None
    assert float(str(result["precision"])) >= 0.9, result["wrong_findings"]
    assert float(str(result["recall"])) >= 0.5


def test_ser_for_a_state_is_corrected_in_the_subjects_person() -> None:
    (found,) = check("Yo es cansado", "es")
    assert (found.original, found.corrected) == ("es cansado", "estoy cansado")
