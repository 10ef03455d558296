"""Offline mode (the demo model is the only one): the checker's corrections and a follow-up question from
the content bank answer the turn, with the demo model's sentence only when it passed the guard."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from charla.core.catalog import say as copy
from charla.store.profile import Profile
from charla.store.session import Said, Session
from charla.tutor import guard, offline, questions
from charla.tutor.llm import Completion, LLMUnavailable, Prompt
from charla.tutor.pipeline import Tutor
from charla.tutor.prompt import render
from charla.tutor.router import Router
from orchestrator.console import llm_banner
from tests.agents.test_conversation import bodies, say
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually, make_settings
from tests.tutor.test_guard import LOOP


@dataclass
class DemoModel:
    """A scripted stand-in for the offline model (the real one is driven in test_local_model)."""

    answers: list[str]
    prompts: list[Prompt] = field(default_factory=list)
    name: str = "local"
    model: str = "SmolLM2-fake"
    demo: bool = True

    async def complete(self, prompt: Prompt) -> Completion:
        self.prompts.append(prompt)
        if not self.answers:
            raise LLMUnavailable(self.name, "no answer scripted")
        return Completion(self.answers.pop(0), self.name, self.model, 10, 10, 5.0, demo=True)

    async def close(self) -> None:
        return None




def offline_tutor(model: DemoModel, **env: str) -> Tutor:
    router = Router({"local": model}, ("local",), ("local",))
    assert router.demo_only
    return Tutor(router, make_settings(CHARLA_LOCAL_MODEL="off", **env))


async def test_a_looping_demo_model_is_not_relayed_the_checker_answers() -> None:
    model = DemoModel([LOOP])
    answer = await offline_tutor(model).answer(["Yo soy cansado porque trabajo mucho"], Session(), Profile(), [])
    shown = render(answer.reply, demo=answer.demo)
    assert "Spanish tutor" not in shown
    assert not guard.repeated(shown)
    assert "✏️ ~soy cansado~ → *estoy cansado*" in shown
    assert answer.reply.question in {q.text for q in questions.bank("es") if q.band == "A2"}
    assert shown.index("estoy cansado") < shown.index(answer.reply.question) < shown.index("demo model")
    (prompt,) = model.prompts
    assert (prompt.max_tokens, prompt.stop, prompt.seconds, prompt.json) == (48, ("\n",), 0.5, False)
    assert (answer.demo, answer.usage.provider, answer.usage.route) == (True, "local", "offline")


async def test_a_demo_sentence_that_passes_the_guard_is_kept() -> None:
    model = DemoModel(["¡Qué bien que trabajas mucho!"])
    answer = await offline_tutor(model).answer(["Yo trabajo mucho"], Session(), Profile(level="B2"), [])
    assert answer.reply.reply == "¡Qué bien que trabajas mucho!"
    assert answer.reply.corrections == []
    assert answer.reply.question in {q.text for q in questions.bank("es") if q.band == "B2"}


async def test_the_question_follows_the_topic_and_is_not_asked_again() -> None:
    session = Session(topic="travel")
    tutor = offline_tutor(DemoModel([]), CHARLA_OFFLINE_MODEL_S="0")
    first = await tutor.answer(["Me gusta viajar"], session, Profile(level="B1"), [])
    session.messages.append(Said(role="assistant", text=render(first.reply)))
    second = await tutor.answer(["Fui a Roma"], session, Profile(level="B1"), [])
    travel = {q.text for q in questions.bank("es") if q.band == "B1" and q.topic == "travel"}
    assert {first.reply.question, second.reply.question} == travel


async def test_without_a_demo_sentence_budget_the_model_is_not_asked_and_a_failing_one_is_no_failure() -> None:
    model = DemoModel([])
    started = time.perf_counter()
    answer = await offline_tutor(model, CHARLA_OFFLINE_MODEL_S="0").answer(["Yo soy cansada"], Session(), Profile(), [])
    assert time.perf_counter() - started < 1.0
    assert model.prompts == []
    assert answer.reply.corrections[0].corrected == "estoy cansada"
    failing = await offline_tutor(model).answer(["hola"], Session(), Profile(), [])  # the model raises
    assert failing.reply.question
    assert failing.demo


@pytest.fixture
async def offline_stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LOCAL_MODEL="on", CHARLA_LLM_CHAIN="local",
                             CHARLA_LLM_HARD_CHAIN="local", CHARLA_OFFLINE_MODEL_S="0") as running:
        yield running


async def test_an_offline_turn_in_the_running_stack_is_corrected_in_under_a_second(offline_stack: Stack) -> None:
    started = time.perf_counter()
    await say(offline_stack, "Yo soy cansado porque trabajo mucho")
    await offline_stack.fake.wait_for(1, seconds=10)
    assert time.perf_counter() - started < 1.0
    (body,) = bodies(offline_stack)
    assert "~soy cansado~ → *estoy cansado*" in body
    assert "demo model" in body
    assert not guard.repeated(body)
    assert offline_stack.llm.calls("groq") == 0


async def test_the_console_banner_says_what_offline_mode_can_and_cannot_do(offline_stack: Stack) -> None:
    async def announced() -> bool:
        return bool((await llm_banner(offline_stack.res))["chain"])

    await eventually(announced, 10, "the conversation agent's announcement")
    shown: dict[str, Any] = await llm_banner(offline_stack.res)
    assert shown["offline"]
    assert shown["offline_mode"] == list(offline.MODE)
    assert any("GROQ_API_KEY" in line for line in shown["offline_mode"])


@pytest.mark.parametrize("sentence", ["Este maradora", "A man who is not vegan.", "Minejer.",
                                      "The word sindicatos is a verb that means to provide"])
async def test_a_demo_fragment_or_a_sentence_in_another_language_is_dropped(sentence: str) -> None:
    """Seen in the console: the 135M model's fragments and English lines reached a learner of Spanish."""
    answer = await offline_tutor(DemoModel([sentence])).answer(["Yo soy cansado hoy"], Session(), Profile(), [])
    assert answer.reply.reply == copy("offline.fix", "en")
    assert "✏️ ~soy cansado~ → *estoy cansado*" in render(answer.reply, demo=answer.demo)


async def test_a_dangling_demo_sentence_is_dropped_for_a_learner_of_english() -> None:
    model = DemoModel(["The original sentence is a grammatical error that can be fixed by rewriting it to:"])
    answer = await offline_tutor(model, CHARLA_DEFAULT_TARGET_LANGUAGE="en").answer(
        ["She don't like apples"], Session(), Profile(), [])
    assert answer.reply.reply == copy("offline.fix", "en")
    assert [c.original for c in answer.reply.corrections] == ["don't"]
