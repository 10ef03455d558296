"""Listening drills through the running stack (signed webhooks in, the fake Graph API out, real PostgreSQL and
Redis): a dictation round is sent as an instruction and a voice note of the sentence (never its text), graded
word by word on a typed answer with a typo, a missing word and an accent slip, recorded in the profile and as a
practice card; a comprehension round is answered by tap, typed letter and number, and scored with its passage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.events import SpeakRequest, decode_event
from charla.journey import listening_bank as catalog
from tests.agents.test_activities import WA, tap, turn
from tests.agents.test_choices import sent_recorded
from tests.agents.test_conversation import bodies, rows
from tests.support.harness import Stack, running_stack
from tests.support.helpers import entries, eventually

SENTENCE = "Ayer comí paella con mis amigos."  # the first A2 sentence in Spanish


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def spoken(redis: Redis) -> list[SpeakRequest]:
    return [event for _, fields in await entries(redis, c.STREAM_VOICE)
            if isinstance(event := decode_event(fields[b"e"]), SpeakRequest)]


async def _count(redis: Redis, n: int) -> bool:
    return len(await spoken(redis)) >= n


def offered(message: dict[str, Any]) -> list[str]:
    action = message["interactive"]["action"]
    if "buttons" in action:
        return [b["reply"]["id"] for b in action["buttons"]]
    return [r["id"] for section in action["sections"] for r in section["rows"]]


async def test_a_dictation_round_is_spoken_then_graded_word_by_word(stack: Stack, db: str, redis_default: Redis
                                                                    ) -> None:
    await turn(stack, "dictado", 1)
    instruction = bodies(stack, WA)[0]
    assert "Dictation* (A2)" in instruction
    assert "paella" not in instruction  # the sentence is only heard
    assert offered(stack.fake.sent[0]) == ["dictation:replay", "dictation:stop"]
    await eventually(lambda: _count(redis_default, 1), 10, "the sentence spoken")
    assert [(s.text, s.language) for s in await spoken(redis_default)] == [(SENTENCE, "es")]
    assert await rows(db, "SELECT kind, body FROM messages WHERE kind = 'voice'") == [("voice", SENTENCE)]

    await tap(stack, "dictation:replay", "Play it again", 2)  # heard again, still waiting for the answer
    await eventually(lambda: _count(redis_default, 2), 10, "the sentence spoken again")
    await turn(stack, "ayer comi paela con amigos", 3)
    graded = bodies(stack, WA)[2]
    assert graded.splitlines()[:2] == ["🎧 *Dictation: 71%* (4 of 6 words right)",
                                       "Ayer ~comi~ *comí* ~paela~ *paella* con *mis* amigos"]
    assert "✏️ Accents: comi → comí" in graded
    assert "🔤 Almost (a typo): paela → paella" in graded
    assert "➕ Missing: mis" in graded
    assert offered(stack.fake.sent[2]) == ["dictation:next", "dictation:stop"]
    listening = (await rows(db, "SELECT data->'listening' FROM profiles"))[0][0]
    assert listening == {"dictations": 1, "dictation_scores": [71], "missed": {"mis": 1},
                         "seen": [catalog.sentence_id(SENTENCE)]}
    assert await rows(db, "SELECT item FROM practice_cards") == [("word:mis",)]
    assert stack.llm.calls("groq") == 0  # no model was asked

    await tap(stack, "dictation:next", "Another one", 4)  # the next sentence, not the same one again
    await eventually(lambda: _count(redis_default, 3), 10, "the next sentence spoken")
    assert (await spoken(redis_default))[-1].text == "El tren sale a las ocho de la mañana."
    await tap(stack, "dictation:stop", "Finish", 5)
    assert bodies(stack, WA)[4].startswith("Well done!")
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]


async def test_a_comprehension_round_is_scored_and_its_passage_revealed(stack: Stack, db: str,
                                                                        redis_default: Redis) -> None:
    await turn(stack, "comprensión auditiva", 1)
    first = bodies(stack, WA)[0]
    assert first.endswith("*1/3* ¿Con quién fue al mercado?")
    assert "mercado con mi amiga" not in first  # the passage is only heard
    assert offered(stack.fake.sent[0]) == ["listening:q0:0", "listening:q0:1", "listening:q0:2", "listening:replay"]
    await eventually(lambda: _count(redis_default, 1), 10, "the passage spoken")
    assert (await spoken(redis_default))[0].text.startswith("El sábado pasado fui al mercado")

    await tap(stack, "listening:q0:1", "Con Marta", 2)
    assert bodies(stack, WA)[1].startswith("✅ Right!\n\n*2/3* ¿Dónde comieron?")
    await eventually(lambda: sent_recorded(db, stack.fake.ids[0]), 10, "the first question's id recorded")
    await tap(stack, "listening:q0:0", "Con su madre", 3, context=stack.fake.ids[0])  # answered: asked again
    assert "*2/3*" in bodies(stack, WA)[2]
    assert len(await spoken(redis_default)) == 1
    await turn(stack, "en casa", 4)  # an option typed out: wrong (it was near the river)
    assert bodies(stack, WA)[3].startswith("❌ Not quite: it was *Cerca del río*.")
    await turn(stack, "1", 5)  # a number picks the first offered option: right
    done = bodies(stack, WA)[4]
    assert "🎧 *Listening: 2/3*" in done
    assert "_El sábado pasado fui al mercado" in done
    assert offered(stack.fake.sent[4]) == ["listening:next", "listening:stop"]
    listening = (await rows(db, "SELECT data->'listening' FROM profiles"))[0][0]
    assert listening == {"passages": 1, "passage_scores": [67], "seen": ["es-a2-fin-de-semana"]}
    await turn(stack, "¿Qué significa mercado?", 6)  # words that answer nothing go to the tutor
    assert bodies(stack, WA)[5] == "Echo: ¿Qué significa mercado?"


async def test_a_language_without_drills_says_so(db: str, default_redis_server: str, redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, CHARLA_DEFAULT_TARGET_LANGUAGE="fr") as stack:
        await turn(stack, "dictation", 1)
        assert bodies(stack, WA)[0] == "I don't have listening drills in French yet: only in Spanish and English."
        assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]
