"""Twilio WhatsApp: signatures, inbound messages and status callbacks, replies through the real SDK."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import psycopg
import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from charla.channels.chunking import split_text
from charla.channels.twilio.webhook import delivery_status, inbound_message, signature_ok
from charla.core import constants as c
from charla.core.events import Identity
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually
from tests.support.outbox import interrupted, reply_event
from tests.support.payloads import fixture_json
from tests.support.servers import FakeTwilio, serve_fake_twilio

VECTORS = fixture_json("twilio_signature_vectors.json")
TOKEN = VECTORS["computed_for_fixture_files"]["auth_token"]
INBOUND = {k: str(v) for k, v in fixture_json("twilio_wa_inbound_text.json").items()}


def test_official_and_fixture_signature_vectors() -> None:
    official = VECTORS["official_vector"]
    assert signature_ok(official["url"], official["params"], official["x_twilio_signature"], official["auth_token"])
    fixture = VECTORS["computed_for_fixture_files"]
    signature = fixture["files"]["twilio_wa_inbound_text.json"]
    assert signature_ok(fixture["url"], INBOUND, signature, TOKEN)
    assert not signature_ok(fixture["url"], {**INBOUND, "Body": "changed"}, signature, TOKEN)
    assert not signature_ok("https://evil.example.com/webhooks/twilio/whatsapp", INBOUND, signature, TOKEN)
    assert not signature_ok(fixture["url"], INBOUND, None, TOKEN)


def test_inbound_fixture_parses_to_one_learner_message() -> None:
    message = inbound_message(INBOUND)
    assert message is not None
    assert (message.provider, message.message_id, message.kind, message.text) == (
        "twilio", "SM8e3f2b1c4d5a69788796a5b4c3d2e1f0", "text", "Hola, quiero suscribirme")
    assert message.identity.twilio == "whatsapp:+16505551234"
    assert message.learner == "wa:16505551234"  # the same learner whichever provider they came through
    assert message.payload["to"] == "whatsapp:+14155238886"
    assert delivery_status(INBOUND) is None


def test_voice_note_and_status_callback_forms() -> None:
    voice = inbound_message({**INBOUND, "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/media/ME1",
                             "MediaContentType0": "audio/ogg", "Body": ""})
    assert voice is not None
    assert voice.kind == "audio"
    assert voice.payload["media"] == {"url": "https://api.twilio.com/media/ME1", "content_type": "audio/ogg"}
    status = delivery_status({"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "63016",
                              "To": "whatsapp:+16505551234"})
    assert status is not None
    assert (status.status, status.errors[0]["code"]) == ("failed", 63016)
    assert delivery_status({"MessageSid": "SM1", "MessageStatus": "queued", "To": "whatsapp:+1"}) is None


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    async with serve_fake_twilio() as served:
        yield served


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis,
                twilio: tuple[FakeTwilio, str]) -> AsyncIterator[Stack]:
    env = {"WHATSAPP_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
           "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE_URL": twilio[1], "CHARLA_PUBLIC_URL": "https://example.com",
           "WHATSAPP_REENGAGE_TEMPLATE": "HX0123456789abcdef0123456789abcdef", "CHARLA_TWILIO_TEXT_LIMIT": "40"}
    async with running_stack(db, default_redis_server, **env) as running:
        yield running


async def post_form(stack: Stack, form: dict[str, str], path: str = "/webhooks/twilio/whatsapp",
                    signature: str | None = None) -> int:
    url = f"https://example.com{path}"
    signature = signature or RequestValidator(TOKEN).compute_signature(url, form)
    response = await stack.http.post(path, content=urlencode(form),
                                     headers={"content-type": "application/x-www-form-urlencoded",
                                              "x-twilio-signature": signature})
    return response.status_code


async def outbound(db: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute("SELECT body, status FROM messages WHERE direction = 'out'")).fetchall()
    return [(str(a), str(b)) for a, b in rows]


async def outbound_is(db: str, *rows: tuple[str, str]) -> bool:
    return await outbound(db) == list(rows)


async def test_the_signed_fixture_is_answered_once_through_the_sdk(
        stack: Stack, twilio: tuple[FakeTwilio, str], db: str) -> None:
    fake = twilio[0]
    signature = VECTORS["computed_for_fixture_files"]["files"]["twilio_wa_inbound_text.json"]
    for _ in range(3):  # Twilio retries; one reply
        assert await post_form(stack, INBOUND, signature=signature) == 200
    await fake.wait_for(1, seconds=20)
    reply = "".join(m["Body"] for m in fake.sent)
    assert reply == "Echo: Hola, quiero suscribirme"
    assert {m["To"] for m in fake.sent} == {"whatsapp:+16505551234"}
    assert {m["From"] for m in fake.sent} == {"whatsapp:+14155238886"}
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute("SELECT outbound_id FROM messages WHERE direction = 'out'")).fetchone()
    assert row is not None  # the callback names the reply, which Twilio's own fields do not
    assert {m["StatusCallback"] for m in fake.sent} == {f"https://example.com/webhooks/twilio?outbound={row[0]}"}
    expected_auth = "Basic " + base64.b64encode(f"AC00000000000000000000000000000000:{TOKEN}".encode()).decode()
    assert set(fake.auth) == {expected_auth}


async def test_bad_signature_is_refused_and_publishes_nothing(stack: Stack, redis_default: Redis) -> None:
    assert await post_form(stack, INBOUND, signature="bm90IGEgc2lnbmF0dXJl") == 401
    assert await post_form(stack, INBOUND, path="/webhooks/twilio", signature="x") == 401
    assert await redis_default.xlen(c.STREAM_INBOUND) == 0


async def test_status_callbacks_move_the_reply_forward(stack: Stack, twilio: tuple[FakeTwilio, str],
                                                      db: str) -> None:
    await post_form(stack, {**INBOUND, "Body": "hola"})
    await twilio[0].wait_for(1, seconds=20)
    await eventually(lambda: outbound_is(db, ("Echo: hola", "sent")), 20, "reply sent")
    sid = "SM" + "0" * 32
    for status in ("read", "delivered"):
        assert await post_form(stack, {"MessageSid": sid, "MessageStatus": status, "To": "whatsapp:+16505551234",
                                       "AccountSid": "AC0"}, path="/webhooks/twilio") == 200
    await eventually(lambda: outbound_is(db, ("Echo: hola", "read")), 20, "reply read")


async def test_window_closed_at_twilio_falls_back_to_the_content_template(
        stack: Stack, twilio: tuple[FakeTwilio, str]) -> None:
    fake = twilio[0]
    fake.scripted = [(400, {"code": 63016, "message": "Failed to send freeform message because you are outside "
                                                      "the allowed window.", "more_info": "", "status": 400})]
    await post_form(stack, {**INBOUND, "Body": "hola"})
    await fake.wait_for(1, seconds=20)
    assert fake.sent[0]["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert "Body" not in fake.sent[0]


async def test_long_replies_fit_twilio_limit(stack: Stack, twilio: tuple[FakeTwilio, str]) -> None:
    text = "Una frase corta. " * 6
    await post_form(stack, {**INBOUND, "Body": text, "MessageSid": f"SM{int(time.time())}"})
    expected = len(split_text(f"Echo: {text.strip()}", 40))
    await twilio[0].wait_for(expected, seconds=20)
    assert all(len(m["Body"]) <= 40 for m in twilio[0].sent)
    assert "".join(m["Body"] for m in twilio[0].sent) == f"Echo: {text.strip()}"


async def test_a_send_interrupted_after_twilio_accepted_it_is_confirmed_by_its_callback_not_repeated(
        stack: Stack, twilio: tuple[FakeTwilio, str], db: str) -> None:
    """The state a sender killed after Twilio accepted a reply leaves, then Twilio's status callback (its URL
    names the reply): the restarted sender records the reply as sent and sends nothing."""
    event = await reply_event(stack.res, Identity(twilio="whatsapp:+16505551234"), "hola", provider="twilio")
    await interrupted(stack.res, event, 0)
    callback = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "sent", "To": "whatsapp:+16505551234",
                "AccountSid": "AC0"}
    assert await post_form(stack, callback, path=f"/webhooks/twilio?outbound={event.outbound_id}") == 200
    await stack.res.bus.publish(c.STREAM_OUTBOX, event)
    await eventually(lambda: outbound_is(db, ("hola", "sent")), 20, "the reply recorded as sent")
    assert twilio[0].sent == []
    async with await psycopg.AsyncConnection.connect(db) as conn:
        parts = await (await conn.execute("SELECT provider_message_id FROM outbound_parts")).fetchall()
    assert parts == [("SM" + "1" * 32,)]
