"""The learner's settings through the running stack: `settings` lists them, a tap or plain words change them,
and they change what the tutor is told (strictness, explanation language, reply length) and what the learner
gets (strictness 1 shows only the corrections that break meaning; no voice notes once they are off)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from charla.store.profile import Profile
from charla.tutor.prompt import MINOR, Correction, TutorReply, render, shown
from tests.agents.test_conversation import bodies, rows
from tests.journey.test_placement import WA, offered, tap, turn
from tests.support.fake_llm import system_of
from tests.support.harness import Stack, running_stack

REPLY = json.dumps({"reply": "¡Qué bien!", "voice_example": True, "say": "estoy cansado", "corrections": [
    {"original": "esta", "corrected": "está", "category": "accents", "explanation": "Accent on the verb."},
    {"original": "soy cansado", "corrected": "estoy cansado", "category": "ser_estar",
     "explanation": "A state takes estar."}]}, ensure_ascii=False)
SENTENCE = "Hoy soy cansado porque mi casa esta lejos"


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def tutored(stack: Stack) -> tuple[str, str]:
    """One tutor turn answered with REPLY: the system prompt the tutor got, and what the learner read."""
    stack.llm.script["groq"] = [REPLY]
    await turn(stack, SENTENCE)
    return system_of(stack.llm.requests["groq"][-1]), bodies(stack, WA)[-1]


async def voice_notes(db: str) -> object:
    return (await rows(db, "SELECT count(*) FROM messages WHERE kind = 'voice'"))[0][0]


async def test_settings_change_what_the_tutor_is_told_and_what_the_learner_sees(stack: Stack, db: str) -> None:
    system, seen = await tutored(stack)
    assert "Correct real mistakes" in system
    assert "1-3 short sentences" in system
    assert "~esta~ → *está*" in seen
    assert "estoy cansado" in seen
    assert await voice_notes(db) == 1

    await turn(stack, "settings")
    menu = bodies(stack, WA)[-1]
    assert "Corrections: *The usual*" in menu
    assert "Voice notes: *Voice notes on*" in menu
    choices = offered(stack.fake.sent[-1])
    assert ("settings:strictness:1", "Only key mistakes") in choices
    assert len(choices) == 7
    await tap(stack, "settings:strictness:1", "Only key mistakes")
    assert bodies(stack, WA)[-1].startswith("Done: *Corrections* → *Only key mistakes*")
    system, seen = await tutored(stack)
    assert "Correct only mistakes that change or hide the meaning" in system
    assert "estoy cansado" in seen
    assert "está" not in seen

    assert await voice_notes(db) == 2
    await turn(stack, "correct everything")
    await turn(stack, "explain in Spanish")
    await turn(stack, "respuestas más cortas")
    await turn(stack, "no voice notes")
    assert bodies(stack, WA)[-1].startswith("Done: *Voice notes* → *Voice notes off*")
    system, seen = await tutored(stack)
    assert "Correct every mistake" in system
    assert "one short explanation in Spanish" in system
    assert "1-2 short sentences" in system
    assert "~esta~ → *está*" in seen
    assert await voice_notes(db) == 2  # the reply asked for one: not sent to this learner
    prefs = (await rows(db, "SELECT data->'preferences' FROM profiles"))[0][0]
    assert prefs == {"strictness": 3, "explanations": "target", "length": "short", "voice": False}


async def test_words_that_name_no_setting_show_the_list(stack: Stack, db: str) -> None:
    await turn(stack, "explain in french")  # a language that is neither theirs nor the one they learn
    assert bodies(stack, WA)[-1].startswith("I didn't catch which setting you mean.")
    await turn(stack, "mis ajustes")
    assert stack.fake.sent[-1]["interactive"]["type"] == "list"
    await turn(stack, "2")  # a numbered answer picks the second row
    assert bodies(stack, WA)[-1].startswith("Done: *Corrections* → *Everything, accents too*")
    assert await rows(db, "SELECT data->'preferences'->>'strictness' FROM profiles") == [("3",)]
    assert stack.llm.calls("groq") == 0


async def test_a_request_to_explain_more_is_conversation(stack: Stack, db: str) -> None:
    stack.llm.script["groq"] = [REPLY]
    await turn(stack, "explain it in detail")  # no language named: the tutor answers it, no settings change
    assert bodies(stack, WA)[-1].startswith("¡Qué bien!")
    assert stack.llm.calls("groq") == 1
    assert await rows(db, "SELECT data->'preferences' FROM profiles WHERE data ? 'preferences'") in (
        [], [({"strictness": 2, "explanations": "native", "length": "normal", "voice": True},)])


def test_strictness_1_keeps_only_the_corrections_that_break_meaning() -> None:
    every = [Correction(original=c, corrected=c.upper(), category=c) for c in
             ("accents", "spelling", "punctuation", "ser_estar", "tense", "gender_agreement", "vocabulary")]
    assert [c.category for c in shown(every, 1)] == ["ser_estar", "tense"]
    assert len(shown(every, 2)) == 3
    assert len(shown(every, 3)) == 7
    assert not {"accents", "spelling", "punctuation"} - MINOR
    text = render(TutorReply(reply="Bien", corrections=every[:3]), strictness=1)
    assert text == "Bien"  # only minor slips: nothing to show
    assert Profile().preferences.strictness == 2
