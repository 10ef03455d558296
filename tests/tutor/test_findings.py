"""The checker's findings merged into a model's corrections: each error once, the checker's sure finds added,
contradictions counted (they get a second opinion); and the turn's pipeline using them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from charla.store.profile import Profile
from charla.store.session import Session
from charla.tutor import findings
from charla.tutor.checker import base
from charla.tutor.checker.base import Finding
from charla.tutor.prompt import Correction
from tests.support.fake_llm import FakeLLM, serve_fake_llm
from tests.tutor.test_tutor import tutor_for

SOY = Finding("soy cansado", "estoy cansado", "ser_estar", "check.es.ser_estar_state", 3, 14, {"word": "cansado"})
MI = Finding("mi amigos", "mis amigos", "number_agreement", "check.es.number_det", 20, 29)


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, str]]:
    async with serve_fake_llm() as served:
        yield served


def test_an_error_the_model_missed_is_added() -> None:
    model = [Correction(original="mi amigos", corrected="mis amigos", category="number_agreement")]
    merged = findings.merge(model, [SOY, MI], "en")
    assert [(c.original, c.category) for c in merged.corrections] == [
        ("mi amigos", "number_agreement"), ("soy cansado", "ser_estar")]
    assert (merged.added, merged.contradicted) == (1, 0)


@pytest.mark.parametrize("model", [
    Correction(original="Yo soy cansado", corrected="Yo estoy cansado", category="ser_estar"),  # a wider span
    Correction(original="soy", corrected="estoy", category="ser_estar"),  # a narrower one
    Correction(original="Soy cansado.", corrected="Estoy cansado.", category="other"),  # case, punctuation
    Correction(original="cansado soy", corrected="estoy cansado", category="ser_estar"),  # same category and fix
])
def test_the_same_error_found_by_both_is_counted_once(model: Correction) -> None:
    merged = findings.merge([model], [SOY], "en")
    assert merged.corrections == [model]
    assert (merged.added, merged.contradicted) == (0, 0)


def test_a_model_correction_the_checker_corrects_otherwise_is_a_contradiction() -> None:
    model = [Correction(original="soy cansado", corrected="fui cansado", category="tense")]
    merged = findings.merge(model, [SOY], "en")
    assert (merged.added, merged.contradicted) == (0, 1)


def test_the_merge_stays_within_the_reply_limit() -> None:
    model = [Correction(original=f"x{n}", corrected=f"y{n}") for n in range(8)]
    assert len(findings.merge(model, [SOY], "en").corrections) == 8


def test_a_missing_checker_is_a_typed_absence_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(base.MODULES, "es", "charla.tutor.checker.not_installed")
    assert findings.findings(["Yo soy cansado"], "es") == []
    assert findings.findings(["Yo soy cansado"], "xx") == []  # no checker at all for the language
    with pytest.raises(findings.NoChecker):
        findings._checked("Yo soy cansado", "es")


async def test_the_turn_adds_what_the_model_missed(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = [json.dumps({"reply": "¡Qué bien! ¿Con quién fuiste?", "corrections": [
        {"original": "mi amigos", "corrected": "mis amigos", "category": "number_agreement"}]}, ensure_ascii=False)]
    answer = await tutor_for(url).answer(["Yo soy cansado con mi amigos"], Session(), Profile(), [])
    assert [c.corrected for c in answer.reply.corrections] == ["mis amigos", "estoy cansado"]
    assert fake.calls("groq") == 1
    assert fake.calls("anthropic") == 0


async def test_a_contradicted_correction_gets_a_second_opinion(llm: tuple[FakeLLM, str]) -> None:
    fake, url = llm
    fake.script["groq"] = [json.dumps({"reply": "Vale. ¿Y hoy qué tal?", "corrections": [
        {"original": "soy cansado", "corrected": "era cansado", "category": "tense"}]}, ensure_ascii=False)]
    fake.script["anthropic"] = [json.dumps({"reply": "Vale. ¿Y hoy qué tal?", "corrections": [
        {"original": "soy cansado", "corrected": "estoy cansado", "category": "ser_estar"}]}, ensure_ascii=False)]
    answer = await tutor_for(url).answer(["Ayer soy cansado"], Session(), Profile(), [])
    assert (answer.usage.provider, answer.usage.route) == ("anthropic", "low_confidence")
    assert [c.corrected for c in answer.reply.corrections] == ["estoy cansado"]


async def test_a_text_without_a_letter_is_not_tagged_and_the_others_still_are(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged: list[str] = []
    real = findings._checked

    def counting(text: str, target: str) -> list[Finding]:
        tagged.append(text)
        return real(text, target)

    monkeypatch.setattr(findings, "_checked", counting)
    assert await findings.checked(["👍", "12:30 !!", "…"], "es") == []
    assert tagged == []
    found = await findings.checked(["😂", "Yo soy cansado"], "es")
    assert [f.corrected for f in found] == ["estoy cansado"]
    assert tagged == ["Yo soy cansado"]
