"""Voice notes through the whole in-process stack: signed webhook → media from the fake Graph API →
transcript → tutoring turn (fake LLM) → text reply quoting what was heard, and a spoken example uploaded
and sent; a repeated phrase checked for pronunciation; every kind of bad audio answered kindly, free."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis

from charla.channels.media import MediaAuthError
from charla.core import constants as c
from charla.core.events import Identity, InboundMessage
from tests.support.fake_llm import last_user_text, system_of
from tests.support.harness import Stack, running_voice_stack
from tests.support.helpers import entries, eventually, make_settings
from tests.support.payloads import text_webhook
from tests.support.servers import GRAPH_TOKEN
from tests.support.voice_kit import as_received, music, note, silence, speak, voice_webhook, wer
from voice.agent import yield_cpu
from voice.audio import decode

OGG = "audio/ogg; codecs=opus"
VOICE_ENV = {"CHARLA_DEFAULT_TARGET_LANGUAGE": "en", "CHARLA_DEFAULT_NATIVE_LANGUAGE": "es"}


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_voice_stack(db, default_redis_server, CHARLA_VOICE_MAX_SECONDS="20",
                                   CHARLA_MAX_MEDIA_BYTES="400000", **VOICE_ENV) as running:
        yield running


async def rows(db: str, query: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        return list(await (await conn.execute(query.encode())).fetchall())


def body(message: dict[str, Any]) -> str:
    return str(message["text"]["body"])


async def test_voice_note_is_heard_answered_and_a_spoken_example_sent(stack: Stack, db: str) -> None:
    said = "I would like a cup of coffee with milk, please."
    stack.fake.media["1001"] = (note(speak(said, "en")), OGG)
    stack.llm.script["groq"] = [json.dumps({"reply": "¡Muy bien! Se dice igual.", "voice_example": True,
                                            "say": "a cup of coffee"})]
    answer = await stack.post(voice_webhook("34600000001", "wamid.v1", "1001"))
    assert answer.status_code == 200
    await stack.fake.wait_for(2, seconds=60)
    text, voice = stack.fake.sent
    quoted = body(text).split("\n\n")[0]
    assert quoted.startswith("🎙️ Escuché: “")
    assert wer(said, quoted.removeprefix("🎙️ Escuché: “").rstrip("”")) <= 0.15
    assert body(text).endswith("¡Muy bien! Se dice igual.")
    assert text["context"]["message_id"] == "wamid.v1"
    assert (voice["type"], voice["audio"]["voice"]) == ("audio", True)
    ((mime, audio),) = stack.fake.uploads
    assert mime == "audio/ogg"
    assert audio.startswith(b"OggS")
    assert len(audio) < 512 * 1024
    assert decode(audio, max_seconds=30).seconds > 0.5
    assert stack.fake.media_fetches == ["1001"]
    request = stack.llm.requests["groq"][0]
    assert wer(said, last_user_text(request)) <= 0.15
    assert "automatic transcript of their voice note" in system_of(request)
    query = "SELECT kind, status FROM messages WHERE direction = 'out' ORDER BY id"
    await eventually(lambda: _equals(rows(db, query), [("text", "sent"), ("voice", "sent")]), 10,
                     "both replies recorded as sent")
    assert await rows(db, "SELECT free_used FROM learners") == [(1,)]

    # the learner repeats the phrase with a wrong word: the word is named
    stack.fake.media["1002"] = (note(speak("A cup of tea.", "en")), OGG)
    await stack.post(voice_webhook("34600000001", "wamid.v2", "1002"))
    await stack.fake.wait_for(3, seconds=60)
    feedback = body(stack.fake.sent[2])
    assert "🎯 Pronunciación" in feedback
    assert "*coffee*: oí “tea”" in feedback
    assert "repeating «a cup of coffee»" in system_of(stack.llm.requests["groq"][1])


async def test_text_after_a_voice_note_is_not_held_behind_it(stack: Stack) -> None:
    """The voice stream is separate: a text sent while a note is still being heard is answered on its own."""
    stack.fake.media["1003"] = (note(speak("My sister works at the hospital.", "en")), OGG)
    await stack.post(voice_webhook("34600000002", "wamid.v3", "1003"))
    await stack.post(text_webhook("34600000003", "wamid.t3", "hola"))
    await stack.fake.wait_for(2, seconds=60)
    assert {m["to"] for m in stack.fake.sent} == {"34600000002", "34600000003"}


BAD: list[tuple[str, tuple[bytes, str] | None, str]] = [
    ("empty", (b"", OGG), "Tu nota de voz llegó vacía"),
    ("corrupt", (b"OggS" + bytes(range(256)) * 40, OGG), "No pude abrir esa nota de voz"),
    ("image", (b"\x89PNG\r\n\x1a\n" + bytes(300), "image/png"), "Eso no parece un audio"),
    ("silence", (note(silence(4)), OGG), "No oí ninguna voz"),
    ("music", (note(music(5)), OGG), "No oí ninguna voz"),
    ("too_long", (note(silence(25)), OGG), "demasiado larga para mí (25 s; escucho hasta 20 s)"),
    ("too_large", (bytes(500_000), OGG), "demasiado grande para mí (escucho hasta 20 s)"),  # refused unread
    ("expired", None, "Ya no pude descargar esa nota de voz"),
]


async def test_bad_audio_gets_a_kind_answer_costs_nothing_and_nothing_is_retried(stack: Stack, db: str) -> None:
    for n, (_name, served, _) in enumerate(BAD):
        media_id = f"20{n:02d}"  # Meta media ids are numeric
        if served is None:
            stack.fake.media[media_id] = (note(silence(1)), OGG)
            stack.fake.expired.add(media_id)
        else:
            stack.fake.media[media_id] = served
        await stack.post(voice_webhook(f"3461000{n:04d}", f"wamid.bad{n}", media_id))
    await stack.fake.wait_for(len(BAD), seconds=60)
    answers = {m["to"]: body(m) for m in stack.fake.sent}
    for n, (name, _, expected) in enumerate(BAD):
        assert expected in answers[f"3461000{n:04d}"], name
    assert stack.llm.calls("groq") == 0
    assert await rows(db, "SELECT DISTINCT free_used FROM learners") == [(0,)]
    assert await entries(stack.res.redis, c.STREAM_VOICE + c.DEAD_SUFFIX) == []


async def test_a_rejected_token_alerts_the_operator_and_the_note_waits_for_the_new_one(
        stack: Stack, redis_default: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MediaAuthError, "retry_after", 2.0)  # 30 s in production
    stack.fake.media_token = "renewed"  # Meta no longer takes Charla's token: 401, code 190
    said = "I would like a cup of coffee with milk, please."
    stack.fake.media["1006"] = (note(speak(said, "en")), OGG)
    await stack.post(voice_webhook("34600000006", "wamid.v6", "1006"))
    await eventually(lambda: redis_default.hget(c.ALERTS_KEY, "190"), 20, "token alert")
    alert = json.loads(await redis_default.hget(c.ALERTS_KEY, "190") or b"{}")
    assert alert["message"].startswith("meta rejected Charla's credentials: check WHATSAPP_ACCESS_TOKEN")
    assert stack.fake.sent == []  # the note waits: no "send it again" yet
    stack.fake.media_token = GRAPH_TOKEN  # the operator renews it: the next try hears the note
    await stack.fake.wait_for(1, seconds=60)
    quoted = body(stack.fake.sent[0]).split("\n\n")[0]
    assert wer(said, quoted.removeprefix("🎙️ Escuché: “").rstrip("”")) <= 0.15
    assert stack.fake.media_fetches == ["1006"]


@pytest.mark.parametrize(("mode", "provider"), [("ask", None), ("correct", "anthropic")])
async def test_an_unsure_transcript_is_asked_again_or_read_charitably(
        db: str, default_redis_server: str, redis_default: Redis, mode: str, provider: str | None) -> None:
    async with running_voice_stack(db, default_redis_server, CHARLA_VOICE_MIN_CONFIDENCE="0.99",
                                   CHARLA_VOICE_LOW_CONFIDENCE=mode, **VOICE_ENV) as stack:
        stack.fake.media["1004"] = (note(speak("Yesterday we walked to the market.", "en")), OGG)
        await stack.post(voice_webhook("34600000004", "wamid.v4", "1004"))
        await stack.fake.wait_for(1, seconds=60)
        if provider is None:
            assert "No entendí bien lo que dijiste (entendí: «Yesterday" in body(stack.fake.sent[0])
            assert stack.llm.calls("groq") + stack.llm.calls("anthropic") == 0
        else:
            assert (stack.llm.calls("anthropic"), stack.llm.calls("groq")) == (1, 0)
            assert "transcription was unsure" in system_of(stack.llm.requests["anthropic"][0])


async def test_spoken_replies_are_served_to_twilio_and_the_console(stack: Stack) -> None:
    """Media kept for a spoken reply is served at /media/<token>.ogg; unknown or malformed tokens are 404."""
    audio = note(as_received(speak("Hello", "en")))
    await stack.res.redis.set(c.MEDIA_KEY.format(token="out:abcdefghijklmnopqrstuv"), audio)
    got = await stack.http.get("/media/abcdefghijklmnopqrstuv.ogg")
    assert (got.status_code, got.headers["content-type"]) == (200, "audio/ogg")
    assert got.content == audio
    for token in ("nope-nope-nope-nope-nope", "..%2F..%2Fetc"):
        assert (await stack.http.get(f"/media/{token}.ogg")).status_code == 404


async def test_a_blocked_learner_costs_no_transcription(stack: Stack) -> None:
    identity = Identity(wa_id="34600000005")
    await stack.res.redis.sadd(c.BLOCKED_KEY, identity.key())
    stack.fake.media["1005"] = (note(speak("Hello there.", "en")), OGG)
    event = InboundMessage(learner=identity.key(), provider="meta", message_id="wamid.v5", identity=identity,
                           kind="audio", payload={"message": {"audio": {"id": "1005"}}})
    await stack.res.bus.publish(c.STREAM_VOICE, event)
    await eventually(lambda: _voice_done(stack.res.redis), seconds=30, what="the voice agent took the note")
    assert stack.fake.media_fetches == []


async def _voice_done(redis: Redis) -> bool:
    groups = await redis.xinfo_groups(c.STREAM_VOICE)
    return all(int(g["pending"]) == 0 and int(g.get("lag") or 0) == 0 for g in groups)


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


def test_only_the_listening_threads_yield_the_cpu() -> None:
    """SCHED_IDLE for transcription threads, not for the process: its event loop (heartbeats, lease
    renewals) keeps its normal priority however busy the machine is."""
    listening = ThreadPoolExecutor(1, initializer=yield_cpu, initargs=(make_settings(CHARLA_VOICE_IDLE="true"),))
    with listening:
        assert listening.submit(os.sched_getscheduler, 0).result() == os.SCHED_IDLE
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
