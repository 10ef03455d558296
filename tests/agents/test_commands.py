"""Natural-language commands: whole messages in English or Spanish; sentences that only mention the words
are conversation."""

from __future__ import annotations

import pytest

from charla.tutor.commands import Command, find_timezone, parse


@pytest.mark.parametrize(("text", "expected"), [
    ("help", Command("help")),
    ("¿Qué puedes hacer?", Command("help")),
    ("Ayuda", Command("help")),
    ("topics", Command("topics")),
    ("¿Qué temas hay?", Command("topics")),
    ("Show me verbs", Command("topic", "verbs")),
    ("muéstrame verbos", Command("topic", "verbs")),
    ("Let's talk about food!", Command("topic", "food")),
    ("set my level to B1", Command("level", "B1")),
    ("Mi nivel es a2", Command("level", "A2")),
    ("I'm a C1", Command("level", "C1")),
    ("My native language is English", Command("native", "en")),
    ("Mi idioma nativo es el inglés", Command("native", "en")),
    ("I want to learn Spanish", Command("target", "es")),
    ("Quiero aprender inglés", Command("target", "en")),
    ("My timezone is Europe/Madrid", Command("timezone", "Europe/Madrid")),
    ("I live in Mexico City", Command("timezone", "America/Mexico_City")),
    ("mi zona horaria es America/Bogota", Command("timezone", "America/Bogota")),
    ("remind me at 8am", Command("practice", "08:00", list(range(7)))),
    ("Remind me weekdays at 19:00", Command("practice", "19:00", [0, 1, 2, 3, 4])),
    ("practice at 7:30 pm on weekends".replace(" on", ""), Command("practice", "19:30", [5, 6])),
    ("recuérdame a las 21", Command("practice", "21:00", list(range(7)))),
    ("stop reminders", Command("reminders_off")),
    ("para los recordatorios", Command("reminders_off")),
    ("resume reminders", Command("reminders_on")),
    ("What are my mistakes?", Command("mistakes")),
    ("mis errores", Command("mistakes")),
    ("cancel", Command("cancel")),
    ("Quiero cancelar", Command("cancel")),
    ("delete my data", Command("forget")),
    ("Borra mis datos", Command("forget")),
])
def test_commands_in_both_languages(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", [
    "I had to cancel my trip to Madrid",
    "¿Me ayudas con el subjuntivo?",
    "Yo vivo en una casa grande",
    "My level of Spanish is not good",
    "remind me at 25:00",
    "I'm in love with Spanish food",
    "show me the money",
    "",
])
def test_conversation_is_not_a_command(text: str) -> None:
    assert parse(text) is None


def test_confirmation_answers_only_when_a_question_is_pending() -> None:
    assert parse("sí", awaiting="forget") == Command("forget_confirm")
    assert parse("1", awaiting="forget") == Command("forget_confirm")
    assert parse("no", awaiting="forget") == Command("forget_cancel")
    assert parse("sí") is None


def test_timezones_by_name_or_city() -> None:
    assert find_timezone("europe/madrid") == "Europe/Madrid"
    assert find_timezone("Buenos Aires") == "America/Argentina/Buenos_Aires"
    assert find_timezone("Atlantis") is None
