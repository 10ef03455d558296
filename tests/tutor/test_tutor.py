"""The tutor's model layer through the real groq, anthropic and openai SDKs against a local fake server:
routing, fallback on 429/503/413/529, circuit breaking, structured-output repair, second opinions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from charla.core import constants as c
from charla.store.profile import Profile
from charla.store.session import Said, Session
from charla.tutor.llm import LLMRateLimited, LLMRejected, LLMUnavailable, Message, Prompt, classify
from charla.tutor.pipeline import Tutor
from charla.tutor.prompt import Correction, TutorReply, degrade, parse, render
from charla.tutor.router import AllProvidersFailed, Route, Router, cost_usd, is_hard_grammar, open_providers
from tests.support.fake_llm import OVERLOADED_529, FakeLLM, error, llm_env, serve_fake_llm
from tests.support.helpers import make_settings

PROMPT = Prompt(system="Answer with JSON", messages=[Message("user", "Yo es cansado")])
FIX = json.dumps({"reply": "¡Vaya! ¿Dormiste poco?", "confidence": 0.9, "corrections": [
    {"original": "Yo es cansado", "corrected": "Estoy cansado", "category": "ser_estar",
     "explanation": "Use estar for temporary states."}],
    "new_vocabulary": [{"word": "cansado", "translation": "tired"}]}, ensure_ascii=False)


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, str]]:
    async with serve_fake_llm() as served:
        yield served


def router_for(url: str, *providers: str, redis: Redis | None = None, **env: str) -> Router:
    settings = make_settings(**{**llm_env(url, *providers), **env})
    return Router.from_settings(settings, open_providers(settings), redis)


@pytest.mark.parametrize(("text", "hard"), [
    ("why subjunctive here?", True), ("Explain ser vs estar", True), ("¿Por qué se usa el subjuntivo aquí?", True),
    ("¿Cuál es la diferencia entre por y para?", True), ("when do I use the preterite?", True),
    ("Hola, ¿qué tal?", False), ("Ayer fui a la playa", False), ("why are you so nice?", False),
])
def test_hard_grammar_questions_are_recognised(text: str, hard: bool) -> None:
    assert is_hard_grammar(text) is hard


async def test_groq_answers_ordinary_turns_and_claude_hard_grammar(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    router = router_for(url)
    ordinary = await router.complete(router.route("Hoy comí paella"), PROMPT)
    hard = await router.complete(router.route("why subjunctive here?"), PROMPT)
    assert (ordinary.provider, hard.provider) == ("groq", "anthropic")
    assert fake.calls("groq") == fake.calls("anthropic") == 1
    assert fake.requests["groq"][0]["response_format"] == {"type": "json_object"}
    assert fake.requests["anthropic"][0]["system"] == "Answer with JSON"
    assert min(ordinary.input_tokens, ordinary.output_tokens) > 0
    await router.close()


@pytest.mark.parametrize(("reply", "kind"), [
    (error("groq_error_429.json"), LLMRateLimited), (error("groq_error_503.json"), LLMUnavailable),
    (error("groq_error_429.json", status=413), LLMRateLimited),
    (error("groq_error_400_context_length.json"), LLMRejected),
])
async def test_groq_failures_fall_back_to_claude(llm: tuple[FakeLLM, str], reply: dict[str, object],
                                                 kind: type[Exception]) -> None:
    fake, url = llm
    fake.down["groq"] = reply
    router = router_for(url)
    answer = await router.complete(router.route("hola"), PROMPT)
    assert answer.provider == "anthropic"
    retried = reply["status"] in (429, 503)  # the SDK retries these itself (max_retries=2), not 400/413
    assert fake.calls("groq") == (3 if retried else 1)
    status = int(str(reply["status"]))
    assert isinstance(classify("groq", status, json.dumps(reply["body"])), kind)
    await router.close()


async def test_claude_overloaded_falls_back_to_groq(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.down["anthropic"] = OVERLOADED_529
    router = router_for(url)
    answer = await router.complete(router.route("explain ser vs estar"), PROMPT)
    assert answer.provider == "groq"
    assert fake.calls("anthropic") == 3
    await router.close()


async def test_openai_compatible_server_is_a_provider(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    router = router_for(url, "openai")
    answer = await router.complete(router.route("hola"), PROMPT)
    assert (answer.provider, answer.model) == ("openai", "llama3.2")
    assert fake.requests["openai"][0]["model"] == "llama3.2"
    await router.close()


async def test_breaker_stops_calling_a_failing_provider_then_tries_again(
        llm: tuple[FakeLLM, str], redis_default: Redis) -> None:
    fake, url = llm
    fake.down["groq"] = error("groq_error_503.json")
    router = router_for(url, redis=redis_default, CHARLA_LLM_BREAKER_THRESHOLD="2",
                        CHARLA_LLM_BREAKER_COOLDOWN_S="0.3", CHARLA_LLM_MAX_RETRIES="0")
    for _ in range(4):
        assert (await router.complete(router.route("hola"), PROMPT)).provider == "anthropic"
    assert fake.calls("groq") == 2  # opened after two failures: the next turns skip Groq entirely
    state = json.loads((await redis_default.hget(c.LLM_CIRCUITS_KEY, "groq")) or b"{}")
    assert state["state"] == "opened"
    del fake.down["groq"]
    breaker = await router.breakers.get_breaker("groq")
    breaker.context._state.opened_at = 0.0  # the cooldown has passed
    assert (await router.complete(router.route("hola"), PROMPT)).provider == "groq"  # the trial succeeded
    assert (await router.complete(router.route("hola"), PROMPT)).provider == "groq"
    await router.close()


async def test_rejected_requests_do_not_open_the_breaker(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.down["groq"] = error("groq_error_400_context_length.json")
    router = router_for(url, CHARLA_LLM_BREAKER_THRESHOLD="2")
    for _ in range(4):
        await router.complete(router.route("hola"), PROMPT)
    assert fake.calls("groq") == 4
    await router.close()


async def test_all_down_raises_with_every_reason(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.down = {"groq": error("groq_error_503.json"), "anthropic": error("anthropic_error_500.json")}
    router = router_for(url, CHARLA_LLM_MAX_RETRIES="0")
    with pytest.raises(AllProvidersFailed) as failed:
        await router.complete(router.route("hola"), PROMPT)
    assert set(failed.value.errors) == {"groq", "anthropic"}
    await router.close()


async def test_refused_key_raises_an_operator_alert(llm: tuple[FakeLLM, str], redis_default: Redis) -> None:
    fake, url = llm
    fake.down["groq"] = {"status": 401, "headers": {}, "body": {"error": {"message": "Invalid API Key"}}}
    router = router_for(url, redis=redis_default)
    assert (await router.complete(router.route("hola"), PROMPT)).provider == "anthropic"
    alert = json.loads((await redis_default.hget(c.ALERTS_KEY, "llm-groq")) or b"{}")
    assert "GROQ" in alert["message"].upper()
    await router.close()


_opened: list[Router] = []


@pytest.fixture(autouse=True)
async def _close_routers() -> AsyncIterator[None]:
    yield
    while _opened:
        await _opened.pop().close()


def tutor_for(url: str, **env: str) -> Tutor:
    settings = make_settings(**{**llm_env(url), **env})
    router = Router.from_settings(settings, open_providers(settings))
    _opened.append(router)
    return Tutor(router, settings)


async def test_structured_reply_with_corrections_and_cost(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = [FIX]
    answer = await tutor_for(url).answer(["Yo es cansado"], Session(), Profile(), [])
    assert answer.reply.corrections[0].category == "ser_estar"
    assert answer.usage.provider == "groq"
    assert answer.usage.cost_usd == pytest.approx(cost_usd("llama-3.3-70b-versatile", answer.usage.input_tokens,
                                                           answer.usage.output_tokens, {"llama-3.3-70b": (0.59, 0.79)}))
    system = fake.requests["groq"][0]["messages"][0]["content"]
    assert "Spanish tutor" in system
    assert "native language is English" in system


async def test_small_json_slips_are_repaired_without_asking_again(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = ["```json\n" + FIX[:-1] + ",}\n```"]  # a code fence and a trailing comma
    answer = await tutor_for(url).answer(["Yo es cansado"], Session(), Profile(), [])
    assert answer.reply.reply == "¡Vaya! ¿Dormiste poco?"
    assert fake.calls("groq") == 1


async def test_invalid_structure_is_retried_once_with_the_error(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = [json.dumps({"answer": "no reply field"}), FIX]
    answer = await tutor_for(url).answer(["Yo es cansado"], Session(), Profile(), [])
    assert answer.reply.corrections
    assert "not valid" in fake.requests["groq"][1]["messages"][-1]["content"]
    assert answer.usage.input_tokens > fake.requests["groq"][0]["max_tokens"] * 0  # both calls metered


async def test_still_invalid_degrades_to_plain_text(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = ["Claro, ¿qué tal tu día?", "Sigo sin JSON, perdona."]
    answer = await tutor_for(url).answer(["hola"], Session(), Profile(), [])
    assert answer.reply == TutorReply(reply="Sigo sin JSON, perdona.")
    assert fake.calls("groq") == 2


async def test_low_confidence_gets_a_second_opinion_from_claude(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = [json.dumps({"reply": "Creo que sí", "confidence": 0.3})]
    fake.script["anthropic"] = [FIX]
    answer = await tutor_for(url).answer(["Yo es cansado"], Session(), Profile(), [])
    assert (answer.usage.provider, answer.usage.route) == ("anthropic", "low_confidence")
    assert answer.reply.corrections


async def test_overflowing_session_is_summarized_not_cut(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    session = Session(messages=[Said(role="user" if n % 2 == 0 else "assistant", text=f"mensaje {n} " + "x" * 400)
                                for n in range(20)])
    fake.script["groq"] = ["Hablamos de la familia; confundió ser y estar.", FIX]
    await tutor_for(url, CHARLA_PROMPT_BUDGET_TOKENS="2500").answer(["hola"], session, Profile(), [])
    assert session.summary == "Hablamos de la familia; confundió ser y estar."
    assert len(session.messages) == 10  # the oldest half folded into the summary
    assert "mensaje 0" in fake.requests["groq"][0]["messages"][-1]["content"]  # the summary saw them
    assert "Earlier in this session: Hablamos de la familia" in fake.requests["groq"][1]["messages"][0]["content"]


def test_render_is_short_and_uses_whatsapp_formatting() -> None:
    reply = parse(FIX)
    text = render(reply)
    assert text == ("¡Vaya! ¿Dormiste poco?\n\n✏️ ~Yo es cansado~ → *Estoy cansado*\n"
                    "_Use estar for temporary states._\n\n📚 *cansado* = tired")
    many = TutorReply(reply="Bien", corrections=[Correction(original=f"a{n}", corrected=f"b{n}") for n in range(5)])
    assert render(many).count("•") == 2  # one idea explained, two more named, the rest left for later
    assert "demo model" in render(TutorReply(reply="hi"), demo=True)


def test_degrade_uses_prose_or_the_reply_field() -> None:
    assert degrade("  hola  ") == TutorReply(reply="hola")
    assert degrade('{"reply": "hola", "corrections": "oops"}') == TutorReply(reply="hola")
    assert degrade('{"nothing": 1}') is None
    assert degrade("") is None


async def test_route_is_respected_even_for_a_single_provider(llm: tuple[FakeLLM, str]) -> None:
    _, url = llm
    router = router_for(url, "groq")
    assert router.hard_chain == ("groq",)
    assert router.escalation("groq") is None
    assert (await router.complete(Route("hard_grammar", router.hard_chain), PROMPT)).provider == "groq"
    await router.close()
