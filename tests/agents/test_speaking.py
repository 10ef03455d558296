"""Read-aloud challenges and slow replay through the whole stack with the voice agent (agents/speaking.py):
"practice speaking" sends a sentence as text and as a voice note; a reading (synthesized with Piper) with one
word replaced by nonsense is answered with every word marked, a score, the words to repeat spoken slowly, and
the results in the profile and the FSRS cards; a silent or unrelated recording is answered kindly without a
score; "say it slower" and the button under a spoken example replay the last phrase, slower."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from charla.channels.console import choice_delivery
from tests.agents.test_conversation import say
from tests.support.harness import Stack, running_voice_stack
from tests.support.helpers import eventually
from tests.support.voice_kit import note, piper, silence, speak, voice_webhook
from tests.voice.test_voice_agent import OGG, VOICE_ENV, rows
from voice import readaloud
from voice.audio import decode

WA = "34600000001"


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_voice_stack(db, default_redis_server, CHARLA_VOICE_MAX_SECONDS="20", **VOICE_ENV) as running:
        yield running


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("text", {}).get("body") or message.get("interactive", {}).get("body", {}).get("text"))


def buttons(message: dict[str, Any]) -> list[str]:
    return [b["reply"]["id"] for b in message.get("interactive", {}).get("action", {}).get("buttons", [])]


async def record(stack: Stack, samples: Any, n: int, expect: int) -> None:
    stack.fake.media[f"50{n}"] = (note(samples), OGG)
    assert (await stack.post(voice_webhook(WA, f"wamid.read{n}", f"50{n}"))).status_code == 200
    await stack.fake.wait_for(expect, seconds=90)


async def challenged(db: str, challenge: dict[str, Any], voice: dict[str, Any]) -> str:
    """The sentence of the open read-aloud challenge, checked to be what `challenge` (its text and buttons)
    and `voice` (the voice note after it) showed the learner."""
    ((state,),) = await rows(db, "SELECT state FROM activities WHERE kind = 'speak'")
    sentence = str(state["sentence"])
    assert f"“{sentence}”" in text_of(challenge)
    assert "Lee esto en voz alta" in text_of(challenge)
    assert buttons(challenge) == ["speak:next", "slow:again", "speak:stop"]
    assert voice["type"] == "audio"
    return sentence


def seconds(audio: bytes) -> float:
    return decode(audio, max_seconds=60).seconds


async def test_a_read_aloud_challenge_is_sent_scored_spoken_back_and_recorded(stack: Stack, db: str) -> None:
    await say(stack, "practice speaking")
    await stack.fake.wait_for(2, seconds=60)
    challenge, voice = stack.fake.sent
    sentence = await challenged(db, challenge, voice)
    assert seconds(stack.fake.uploads[0][1]) > 1.0

    # the learner reads it with its longest word said as nonsense: that word is marked, the rest is not
    words = readaloud.tokens(sentence)
    wrong = max(words, key=len)
    await record(stack, speak(sentence.replace(wrong, "blorgatrix", 1), "en"), 1, 4)
    card, repeat = text_of(stack.fake.sent[2]), stack.fake.sent[3]
    assert f"*{wrong}*❗" in card or f"~{wrong}~" in card
    assert "🎯 *" in card
    assert "/100*" in card
    assert "precisión" in card
    assert "fluidez" in card
    assert "no tu acento" in card  # the honest limit
    assert f"*{wrong}*" in card.split("Escucha y repite")[1]
    assert repeat["type"] == "audio"
    spoken = await rows(db, "SELECT body FROM messages WHERE kind = 'voice' ORDER BY id")
    assert wrong in str(spoken[-1][0])
    normal, _ = piper().speak(str(spoken[-1][0]))
    assert seconds(stack.fake.uploads[1][1]) > 1.3 * len(normal) / piper().rate  # spoken slowly
    ((profile,),) = await rows(db, "SELECT data FROM profiles")
    assert profile["speaking"]["readings"] == 1
    assert wrong.lower() in profile["speaking"]["words"]
    assert profile["speaking"]["words"][wrong.lower()]["misses"] == 1
    assert (f"word:{wrong.lower()}",) in await rows(db, "SELECT item FROM practice_cards")
    assert await rows(db, "SELECT kind FROM activities") == [("speak",)]  # open for another try

    # silence, then another sentence entirely: kind answers, no score, the challenge stays open
    await record(stack, silence(3.0), 2, 5)
    assert "🎯" not in text_of(stack.fake.sent[4])
    assert f"“{sentence}”" in text_of(stack.fake.sent[4])
    await record(stack, speak("The weather forecast was surprisingly accurate this week.", "en"), 3, 6)
    unrelated = text_of(stack.fake.sent[5])
    assert "no hay puntuación" in unrelated
    assert "🎯" not in unrelated
    ((profile,),) = await rows(db, "SELECT data FROM profiles")
    assert profile["speaking"]["readings"] == 1


async def test_say_it_slower_and_the_button_replay_the_last_phrase_slowly(stack: Stack, db: str) -> None:
    await say(stack, "más despacio")
    await stack.fake.wait_for(1, seconds=30)
    assert "Todavía no he dicho nada" in text_of(stack.fake.sent[0])
    stack.llm.script["groq"] = [json.dumps({"reply": "Se dice así.", "voice_example": True,
                                            "say": "a cup of coffee"})]
    await say(stack, "how do I say una taza de café?")
    await stack.fake.wait_for(3, seconds=60)
    assert buttons(stack.fake.sent[1]) == ["slow:again"]  # the button under the spoken example
    normal = seconds(stack.fake.uploads[0][1])
    await say(stack, "say it slower")
    await stack.fake.wait_for(5, seconds=60)
    assert "Otra vez, más despacio" in text_of(stack.fake.sent[3])
    assert seconds(stack.fake.uploads[1][1]) > 1.3 * normal
    body = choice_delivery(WA, "slow:again", "🐢 Más despacio", None, message_id="wamid.slowtap")
    assert (await stack.post(body)).status_code == 200
    await stack.fake.wait_for(7, seconds=60)
    assert seconds(stack.fake.uploads[2][1]) > 1.3 * normal
    voiced = await rows(db, "SELECT body FROM messages WHERE kind = 'voice' ORDER BY id")
    assert [str(v[0]) for v in voiced] == ["a cup of coffee"] * 3
    await eventually(lambda: _no_activity(db), 5, "replays open no activity")


async def _no_activity(db: str) -> bool:
    return await rows(db, "SELECT kind FROM activities") == []
