"""Voice notes through Twilio, the whole in-process stack: a signed form webhook → the note fetched from
the fake Twilio (HTTP Basic auth, then a 307 to signed storage that never sees the credentials) →
transcript → tutoring turn (fake LLM) → the text reply through the Messages API quoting what was heard, and
a spoken example sent as a MediaUrl Twilio fetches from Charla's /media/<token>.ogg. Expired, forbidden,
mislabelled and non-audio media are answered kindly, free, and never retried forever; rejected credentials
also raise an operator alert."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis

from charla.channels.media import MediaAuthError
from charla.core import constants as c
from tests.channels.test_twilio import INBOUND, TOKEN, post_form
from tests.support.fake_llm import last_user_text, system_of
from tests.support.harness import Stack, running_voice_stack
from tests.support.helpers import entries, eventually
from tests.support.servers import FakeTwilio, serve_fake_twilio
from tests.support.voice_kit import note, speak, transcriber, wer
from voice.audio import decode

SID = "AC00000000000000000000000000000000"
PUBLIC = "https://example.com"  # CHARLA_PUBLIC_URL: what the webhooks are signed for and Twilio fetches from
CREDENTIALS = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
MAX_DELIVERIES = 3
STORAGE_HOST = "localhost"  # where the fake's MediaUrls redirect to (Twilio's is mms.twiliocdn.com)


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    async with serve_fake_twilio() as (fake, url):
        fake.auth_token = TOKEN
        yield fake, url


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis,
                twilio: tuple[FakeTwilio, str]) -> AsyncIterator[Stack]:
    async with running_voice_stack(
            db, default_redis_server, WHATSAPP_PROVIDER="twilio", TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_API_BASE_URL=twilio[1], CHARLA_TWILIO_MEDIA_HOSTS=STORAGE_HOST, CHARLA_PUBLIC_URL=PUBLIC,
            CHARLA_VOICE_MAX_SECONDS="20",
            CHARLA_BUS_MAX_DELIVERIES=str(MAX_DELIVERIES), CHARLA_DEFAULT_TARGET_LANGUAGE="en",
            CHARLA_DEFAULT_NATIVE_LANGUAGE="es") as running:
        yield running


def media_url(base: str, message_sid: str, media_sid: str) -> str:
    return f"{base}/2010-04-01/Accounts/{SID}/Messages/{message_sid}/Media/{media_sid}"


def voice_form(phone: str, message_sid: str, url: str, content_type: str = "audio/ogg") -> dict[str, str]:
    """Twilio's inbound form for a WhatsApp message with one attachment, from `phone` (digits)."""
    return {**INBOUND, "MessageSid": message_sid, "SmsMessageSid": message_sid, "SmsSid": message_sid,
            "From": f"whatsapp:+{phone}", "WaId": phone, "Body": "", "MessageType": content_type.split("/")[0],
            "NumMedia": "1", "MediaUrl0": url, "MediaContentType0": content_type}


async def rows(db: str, query: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        return list(await (await conn.execute(query.encode())).fetchall())


async def test_a_twilio_voice_note_is_heard_answered_and_a_spoken_example_served(
        stack: Stack, twilio: tuple[FakeTwilio, str], db: str) -> None:
    fake, base = twilio
    said = "I would like a cup of coffee with milk, please."
    fake.media["ME1"] = (note(speak(said, "en")), "audio/ogg")
    stack.llm.script["groq"] = [json.dumps({"reply": "¡Muy bien! Se dice igual.", "voice_example": True,
                                            "say": "a cup of coffee"})]
    assert await post_form(stack, voice_form("16505551234", "SMv1", media_url(base, "SMv1", "ME1"))) == 200
    await fake.wait_for(2, seconds=60)

    text, voice = fake.sent
    quoted = text["Body"].split("\n\n")[0]
    assert quoted.startswith("🎙️ Escuché: “")
    assert wer(said, quoted.removeprefix("🎙️ Escuché: “").rstrip("”")) <= 0.15
    assert text["Body"].endswith("¡Muy bien! Se dice igual.")
    assert {(m["To"], m["From"]) for m in fake.sent} == {("whatsapp:+16505551234", "whatsapp:+14155238886")}
    assert "Body" not in voice
    assert voice["MediaUrl"].startswith(f"{PUBLIC}/media/")
    assert voice["MediaUrl"].endswith(".ogg")
    # fetched once, with Twilio's credentials at Twilio and none at the storage it redirected to
    assert (fake.media_requests, fake.media_fetches, fake.leaked) == ([("ME1", CREDENTIALS)], ["ME1"], [])
    request = stack.llm.requests["groq"][0]
    assert wer(said, last_user_text(request)) <= 0.15
    assert "automatic transcript of their voice note" in system_of(request)

    # what Twilio would fetch from CHARLA_PUBLIC_URL: a real Ogg/Opus voice note saying the phrase
    served = await stack.http.get(voice["MediaUrl"].removeprefix(PUBLIC))
    assert (served.status_code, served.headers["content-type"]) == (200, "audio/ogg")
    assert served.content.startswith(b"OggS")
    assert len(served.content) < 512 * 1024
    decoded = decode(served.content, max_seconds=30)
    assert (decoded.container, decoded.codec) == ("ogg", "opus")
    assert wer("a cup of coffee", transcriber().transcribe(decoded.samples, "en").text) <= 0.25

    query = "SELECT kind, status FROM messages WHERE direction = 'out' ORDER BY id"
    await eventually(lambda: _equals(rows(db, query), [("text", "sent"), ("voice", "sent")]), 10,
                     "both replies recorded as sent")
    assert await rows(db, "SELECT free_used FROM learners") == [(1,)]


async def test_unusable_twilio_media_gets_a_kind_answer_and_is_never_retried_forever(
        stack: Stack, twilio: tuple[FakeTwilio, str], db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, base = twilio
    fake.media["MEpng"] = (b"\x89PNG\r\n\x1a\n" + bytes(300), "image/png")
    fake.media["MEgone"] = (b"", "audio/ogg")
    fake.expired.add("MEgone")
    cases = {  # learner -> (form, what their reply says)
        "16505550001": (voice_form("16505550001", "SMgone", media_url(base, "SMgone", "MEgone")),
                        "Ya no pude descargar esa nota de voz"),
        "16505550002": (voice_form("16505550002", "SMunknown", media_url(base, "SMunknown", "MEnever")),
                        "Ya no pude descargar esa nota de voz"),
        "16505550003": (voice_form("16505550003", "SMpng", media_url(base, "SMpng", "MEpng")),
                        "Eso no parece un audio"),  # announced as audio/ogg, served as a PNG
        "16505550004": (voice_form("16505550004", "SMjpg", media_url(base, "SMjpg", "MEjpg"), "image/jpeg"),
                        "todavía no puedo usar imágenes"),  # never handed to the voice agent; in Spanish, as configured
    }
    for form, _ in cases.values():
        assert await post_form(stack, form) == 200
    await fake.wait_for(len(cases), seconds=60)

    # the operator's auth token no longer matches Twilio's: the operator is alerted and the note waits (tries
    # 30 s apart, shortened here for a renewed token); never renewed, the learner is told after the last try
    monkeypatch.setattr(MediaAuthError, "retry_after", 0.1)
    fake.auth_token = "rotated-at-twilio"
    fake.media["MEauth"] = (note(speak("Hello there.", "en")), "audio/ogg")
    cases["16505550005"] = (voice_form("16505550005", "SMauth", media_url(base, "SMauth", "MEauth")),
                            "No pude recibir tu nota de voz ahora mismo")
    assert await post_form(stack, cases["16505550005"][0]) == 200
    await fake.wait_for(len(cases), seconds=60)
    alert = json.loads(await stack.res.redis.hget(c.ALERTS_KEY, "20003") or b"{}")
    assert alert["message"].startswith("twilio rejected Charla's credentials: check TWILIO_AUTH_TOKEN")

    answers = {m["To"].removeprefix("whatsapp:+"): m["Body"] for m in fake.sent}
    assert len(fake.sent) == len(cases)
    for phone, (_, expected) in cases.items():
        assert expected in answers[phone], phone
    tried = [media_sid for media_sid, _ in fake.media_requests]
    assert sorted(tried) == sorted(["MEgone", "MEnever", "MEpng", *["MEauth"] * MAX_DELIVERIES])
    assert (fake.media_fetches, fake.leaked) == (["MEpng"], [])
    assert stack.llm.calls("groq") == 0
    assert await rows(db, "SELECT DISTINCT free_used FROM learners") == [(0,)]
    assert await entries(stack.res.redis, c.STREAM_VOICE + c.DEAD_SUFFIX) == []


async def test_a_media_url_off_twilio_is_refused_unfetched_and_answered(
        stack: Stack, twilio: tuple[FakeTwilio, str], db: str) -> None:
    """A signed webhook whose MediaUrl names another host (here a second server on 127.0.0.2, holding the
    note): nothing is requested from it, no credentials leave, the learner is told at once (no retries)."""
    fake, _ = twilio
    async with serve_fake_twilio(host="127.0.0.2") as (evil, evil_base):
        evil.auth_token = TOKEN
        evil.media["ME1"] = (note(speak("Hello there.", "en")), "audio/ogg")
        form = voice_form("16505550009", "SMevil", media_url(evil_base, "SMevil", "ME1"))
        assert await post_form(stack, form) == 200
        await fake.wait_for(1, seconds=60)
        assert (evil.media_requests, evil.media_fetches, evil.leaked) == ([], [], [])
    assert "No pude recibir tu nota de voz ahora mismo" in fake.sent[0]["Body"]
    assert fake.media_requests == []
    assert stack.llm.calls("groq") == 0
    assert await entries(stack.res.redis, c.STREAM_VOICE + c.DEAD_SUFFIX) == []


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected
