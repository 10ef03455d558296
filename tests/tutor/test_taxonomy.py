"""Error categories per target language: the prompt lists the learner's language's categories, a model's
category from another language or in its own words lands in that set, the English checker's findings get the
English categories, and a learner of English gets them counted in their error map, named in their language,
and practised with an English drill and grammar table (through the running stack)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis

from agents.scheduler import PracticeScheduler
from charla.core.catalog import say
from charla.store.profile import Profile
from charla.store.session import Session
from charla.tutor import practice, taxonomy
from charla.tutor.prompt import CATEGORY_NAMES, system_prompt
from tests.agents.test_conversation import bodies, rows
from tests.agents.test_conversation import say as send
from tests.agents.test_scheduler import Clock, outbox
from tests.support.fake_llm import system_of
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually


def test_every_language_set_is_named_in_every_catalog_and_ends_with_other() -> None:
    for target in ("es", "en", "fr"):
        own = taxonomy.categories(target)
        assert own[-1] == "other"
        assert len(set(own)) == len(own)
        for category in own:
            for lang in ("en", "es", "pt"):
                assert say(CATEGORY_NAMES[category], lang) != CATEGORY_NAMES[category], (category, lang)
    for target, drills in taxonomy.DRILLS.items():
        assert set(drills) <= set(taxonomy.categories(target))
    for target, tables in practice.GRAMMAR_TABLES.items():
        assert set(tables) <= set(taxonomy.categories(target))


@pytest.mark.parametrize(("category", "target", "expected"), [
    ("ser_estar", "es", "ser_estar"), ("ser_estar", "en", "verb_conjugation"), ("por_para", "en", "prepositions"),
    ("third_person_s", "es", "verb_conjugation"), ("Phrasal verb", "en", "phrasal_verbs"),
    ("question word order", "en", "question_order"), ("uncountable nouns", "en", "countable_uncountable"),
    ("Preposition choice", "es", "prepositions"), ("ser_estar", "fr", "verb_conjugation"),
    ("phrasal_verbs", "fr", "vocabulary"), ("wibble", "en", "other"), (None, "es", "other")])
def test_a_category_from_elsewhere_lands_in_the_target_languages_set(category: str | None, target: str,
                                                                     expected: str) -> None:
    assert taxonomy.fit(category, target) == expected


def test_the_prompt_lists_the_target_languages_categories() -> None:
    english = system_prompt(Profile(), Session(), "en", "es", [])
    assert "phrasal_verbs" in english
    assert "countable_uncountable" in english
    assert "ser_estar" not in english
    spanish = system_prompt(Profile(), Session(), "es", "en", [])
    assert "ser_estar" in spanish
    assert "phrasal_verbs" not in spanish


def test_an_english_exercise_has_an_english_drill_and_grammar_table_explained_in_the_learners_language() -> None:
    text = practice.exercise("error:question_order", Profile(), "es", backed_off=False, target="en")
    assert "orden de las palabras en preguntas: fix" not in text  # named in Spanish, in a Spanish sentence
    assert "_Where you live? What time it is?_" in text
    assert "palabra interrogativa + auxiliar + sujeto + verbo" in text
    spanish = practice.exercise("error:prepositions", Profile(), "en", backed_off=False, target="es")
    assert "_Pienso a ti y sueño en el viaje._" in spanish
    assert "at → a time" not in spanish


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def test_a_learner_of_english_gets_english_categories_counted_named_and_practised(stack: Stack, db: str,
                                                                                        redis_default: Redis) -> None:
    for n, command in enumerate(["Mi idioma nativo es el español", "I want to learn English",
                                 "Remind me at 19:00"], start=1):
        await send(stack, command)
        await stack.fake.wait_for(n, seconds=10)
    stack.llm.script["groq"] = [json.dumps({"reply": "Good! What do you like doing?", "corrections": [
        {"original": "I pick up you", "corrected": "I pick you up", "category": "Phrasal verb", "explanation": "x"},
        {"original": "she are", "corrected": "she is", "category": "ser_estar", "explanation": "x"}]})]
    await send(stack, "Can you give me an advice? I pick up you at six. Where you live? My sister work, she are nice.")
    await stack.fake.wait_for(4, seconds=10)
    assert "phrasal_verbs" in system_of(stack.llm.requests["groq"][-1])
    found = await rows(db, "SELECT jsonb_array_elements(corrections)->>'category' FROM turns")
    assert {category for (category,) in found} == {"phrasal_verbs", "verb_conjugation", "countable_uncountable",
                                                   "question_order", "third_person_s"}

    async def counted() -> bool:
        found = await rows(db, "SELECT data->'errors'->'countable_uncountable'->>'count' FROM profiles")
        return found == [("1",)]

    await eventually(counted, 10, "the English categories in the error map")
    await send(stack, "¿cuáles son mis errores?")
    await stack.fake.wait_for(5, seconds=10)
    shown = bodies(stack)[4]
    assert "*sustantivos contables e incontables* ×1" in shown
    assert "*orden de las palabras en preguntas* ×1" in shown
    (next_run,) = (await rows(db, "SELECT next_run_at FROM schedules"))[0]
    assert isinstance(next_run, datetime)
    await PracticeScheduler(stack.res, Clock(next_run + timedelta(seconds=1))).tick()
    (sent,) = [m.text for m in await outbox(redis_default) if m.text.startswith("🧠")]
    assert "sustantivos contables e incontables" in sent
    assert "_Can you give me an advice?_" in sent  # the sentence the learner wrote it in
    assert "```\ncontables:    a chair, two chairs, many chairs\nincontables:  advice, information" in sent
