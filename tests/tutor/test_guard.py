"""The output guard: loops, rambles, the wrong language, echoes and empty replies never reach a learner;
a failing reply is asked for once more, then replaced by the checker's corrections and a question from
the content bank. The real SDKs against the fake Groq/Anthropic server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from charla.store.profile import Profile
from charla.store.session import Session
from charla.tutor import guard, questions
from charla.tutor.checker import base
from charla.tutor.llm import Message, Prompt
from charla.tutor.prompt import render, system_prompt
from tests.support.fake_llm import FakeLLM, serve_fake_llm
from tests.tutor.test_tutor import tutor_for

LOOP = "I am Ana and I am a Spanish tutor. " + "I am a Spanish tutor.\n" * 40
RAMBLE = " ".join(f"Frase número {n} sobre un tema distinto que no termina nunca." for n in range(40))
FRENCH = "Bonjour ! Je suis très contente, et vous ? C'est une belle journée pour nous."
GOOD_ES = "¡Qué bien! Yo también estoy cansado hoy. ¿Qué haces para descansar?"
GOOD_EN = "Nice! You used estar correctly there. What do you do to relax?"
LIMITS = guard.Limits(("es", "en"))


def prompt(learner: str = "Yo soy cansado porque trabajo mucho") -> Prompt:
    return Prompt(system=system_prompt(Profile(), Session(), "es", "en", []), messages=[Message("user", learner)])


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, str]]:
    async with serve_fake_llm() as served:
        yield served


@pytest.mark.parametrize(("text", "problem"), [
    (LOOP, "repeated"), ("hola " * 12, "repeated"), ("Bien. Bien. Bien.", "repeated"),
    ("uno dos tres cuatro cinco seis " * 3, "repeated"), (RAMBLE, "too_long"), (FRENCH, "wrong_language"),
    ("Yo soy cansado porque trabajo mucho", "echo"), ("   ", "empty"),
    ("Correct real mistakes in what the learner wrote (not style choices): each correction", "echo"),
])
def test_each_kind_of_degenerate_reply_is_caught(text: str, problem: str) -> None:
    assert problem in guard.problems(text, prompt(), LIMITS)


@pytest.mark.parametrize("text", [GOOD_ES, GOOD_EN, "¡Hola!", "Sí, sí, claro. ¿Y tú?",
                                  "Olá! Muito bem, e você?"])  # Portuguese: too few words to judge
def test_ordinary_replies_in_the_target_or_explanation_language_pass(text: str) -> None:
    assert guard.problems(text, prompt(), LIMITS) == []


def test_a_portuguese_speaker_may_be_answered_in_portuguese_not_in_french() -> None:
    pt = guard.Limits(("es", "pt"))
    assert guard.problems("Você está cansado porque trabalha muito, não é? Eu também estou.", prompt(), pt) == []
    assert guard.problems(FRENCH, prompt(), pt) == ["wrong_language"]


@pytest.mark.parametrize("bad", [LOOP, RAMBLE, FRENCH, "Yo soy cansado porque trabajo mucho"])
async def test_a_failing_reply_is_asked_for_once_more(llm: tuple[FakeLLM, str], bad: str) -> None:
    fake, url = llm
    fake.script["groq"] = [json.dumps({"reply": bad}), json.dumps({"reply": GOOD_ES})]
    answer = await tutor_for(url).answer(["Yo soy cansado porque trabajo mucho"], Session(), Profile(), [])
    assert answer.reply.reply == GOOD_ES
    assert fake.calls("groq") == 2
    assert "unusable" in fake.requests["groq"][1]["messages"][-1]["content"]
    assert [m["role"] for m in fake.requests["groq"][1]["messages"]] == ["system", "user", "user"]  # not replayed


@pytest.mark.parametrize("bad", [LOOP, RAMBLE, FRENCH, "Yo soy cansado porque trabajo mucho", ""])
async def test_failing_twice_degrades_to_the_checker_and_a_question(llm: tuple[FakeLLM, str],
                                                                    bad: str) -> None:
    fake, url = llm
    replies: list[dict[str, Any] | str] = [json.dumps({"reply": bad or " "}), json.dumps({"reply": bad or " "})]
    fake.script["groq"] = replies
    answer = await tutor_for(url).answer(["Yo soy cansado porque trabajo mucho"], Session(), Profile(), [])
    shown = render(answer.reply, native="en")
    assert not bad.strip() or bad.strip()[:20] not in shown
    assert not guard.repeated(shown)
    assert [(c.original, c.corrected, c.category) for c in answer.reply.corrections] == [
        ("soy cansado", "estoy cansado", "ser_estar")]
    assert answer.reply.question in {q.text for q in questions.bank("es") if q.band == "A2"}


async def test_without_a_checker_for_the_language_the_fallback_is_the_question(llm: tuple[FakeLLM, str],
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(base.MODULES, "es", "charla.tutor.checker.not_installed")
    fake, url = llm
    fake.script["groq"] = [json.dumps({"reply": LOOP})] * 2
    answer = await tutor_for(url).answer(["Yo soy cansado"], Session(), Profile(level="B1"), [])
    assert answer.reply.corrections == []
    assert answer.reply.question in {q.text for q in questions.bank("es") if q.band == "B1"}


def test_quoting_a_burst_of_the_learners_messages_is_not_a_loop() -> None:
    burst = "\n".join(f"L1 message {n}" for n in range(40))  # (digits fold away: one line, forty times)
    prompt = Prompt(system="You are a tutor.", messages=[Message("user", burst)], max_tokens=600)
    assert guard.problems(f"Echo: {burst}", prompt, guard.Limits(("es", "en"))) == []
    said = Prompt(system="You are a tutor.", messages=[Message("user", "Yo es cansado hoy.\nMi amigos son altos.")],
                  max_tokens=600)
    looping = "Muy bien.\n" + "\n".join(["Yo es cansado hoy."] * 5)  # one line of theirs quoted over and over
    assert "repeated" in guard.problems(looping, said, guard.Limits(("es", "en")))
