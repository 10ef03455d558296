"""The WhatsApp edge, data-driven over every fixture and through the whole in-process stack."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.events import (
    Choice,
    DeliveryStatus,
    Identity,
    InboundMessage,
    OutboundMessage,
    ProviderError,
    decode_event,
)
from charla.core.runtime import open_resources
from orchestrator.app import create_app
from tests.support.fake_llm import FakeLLM
from tests.support.harness import Stack, running_stack, stack_settings
from tests.support.helpers import entries, eventually, make_settings
from tests.support.outbox import reply_event
from tests.support.payloads import FIXTURES as FIXTURES_DIR
from tests.support.payloads import fixture_json, text_webhook
from tests.support.servers import FakeGraph, serve, serve_fake_graph

BUTTON_CONTEXT = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"
# fixture -> (kind, text, choice id, context id) of each message, statuses, error codes
CASES: dict[str, dict[str, list[Any]]] = {
    "wa_text.json": {"inbound": [("text", "Does it come in another color?", None, None)]},
    "wa_signed_text_raw.json": {"inbound": [("text", "Hey there! I am using PyWa.", None, None)]},
    "wa_reply_text.json": {"inbound": [("text", "replied text", None, "wamid.xyzxyz==")]},
    "wa_voice.json": {"inbound": [("audio", None, None, None)]},
    "wa_audio.json": {"inbound": [("audio", None, None, None)]},
    "wa_image.json": {"inbound": [("image", "Taj Mahal", None, None)]},
    "wa_interactive_button_reply.json": {"inbound": [("interactive", "Cancel", "cancel-button", BUTTON_CONTEXT)]},
    "wa_interactive_list_reply.json": {"inbound": [
        ("interactive", "Priority Mail Express", "priority_express",
         "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=")]},
    "wa_template_quick_reply_button.json": {"inbound": [("button", "title", "callback_data", "wamid.xyzxyz==")]},
    "wa_reaction.json": {"inbound": [("reaction", None, None, None)]},
    "wa_unreaction.json": {"inbound": [("reaction", None, None, None)]},
    "wa_status_sent.json": {"statuses": ["sent"]},
    "wa_status_sent_with_biz_opaque.json": {"statuses": ["sent"]},
    "wa_status_delivered.json": {"statuses": ["delivered"]},
    "wa_status_read.json": {"statuses": ["read"]},
    "wa_status_failed_130472.json": {"statuses": ["failed"]},
    "wa_status_failed_131049.json": {"statuses": ["failed"]},
    "wa_errors_event.json": {"errors": [130429]},
}


def test_the_table_covers_every_signed_fixture() -> None:
    assert set(CASES) == set(fixture_json("wa_signature_vectors.json")["computed_for_fixture_files"]["files"])


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, WHATSAPP_REENGAGE_TEMPLATE="charla_continue",
                             WHATSAPP_TEMPLATE_LANGUAGE="es") as running:
        yield running


@pytest.fixture
async def orchestrator_only(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    """The orchestrator without agents, to see exactly what it publishes."""

    settings = make_settings(**stack_settings(db, default_redis_server, "http://127.0.0.1:9"))
    async with open_resources(settings) as res, serve(create_app(settings), lifespan="on") as url, \
            httpx.AsyncClient(base_url=url) as http:
        yield Stack(http, FakeGraph(), res, FakeLLM())


async def stream_events(redis: Redis, stream: str) -> list[Any]:
    return [decode_event(fields[b"e"]) for _, fields in await entries(redis, stream)]


@pytest.mark.parametrize("name", sorted(CASES))
async def test_each_fixture_publishes_what_it_means(orchestrator_only: Stack, redis_default: Redis, name: str) -> None:
    body = (await asyncio.to_thread((FIXTURES_DIR / name).read_bytes))
    assert (await orchestrator_only.post(body)).status_code == 200
    inbound = [e for stream in (c.STREAM_INBOUND, c.STREAM_VOICE)  # voice notes go to the voice agent first
               for e in await stream_events(redis_default, stream) if isinstance(e, InboundMessage)]
    side = await stream_events(redis_default, c.STREAM_STATUSES)
    expected = CASES[name]
    assert [(e.kind, e.text, e.payload["choice_id"], e.context_id) for e in inbound] == expected.get("inbound", [])
    assert [e.status for e in side if isinstance(e, DeliveryStatus)] == expected.get("statuses", [])
    assert [e.code for e in side if isinstance(e, ProviderError)] == expected.get("errors", [])


def test_business_scoped_status_keeps_the_callback_data() -> None:
    from charla.channels.meta.webhook import statuses

    (status,) = statuses(fixture_json("wa_status_sent_with_biz_opaque.json"))
    assert (status.outbound_id, status.learner) == ("some data", "wa:972987654321")


CANNOT = ("I can read text messages and listen to voice notes, but {} are something I can't use yet. "
          "Write to me and I'll help!")


KINDS: list[tuple[str, str | None, str | None]] = [
    ("text", "hola", "Echo: hola"),
    ("interactive", "Cancel", "Echo: Cancel"),  # a tap on someone else's button is conversation, not a command
    ("button", "title", "Echo: title"),
    ("image", "Taj Mahal", "Echo: Taj Mahal\n\n(I can only read the caption: I can't look at images yet.)"),
    ("image", None, CANNOT.format("images")),
    ("sticker", None, CANNOT.format("stickers")),
    ("location", None, CANNOT.format("locations")),
    ("contacts", None, CANNOT.format("contact cards")),
    ("unsupported", None, CANNOT.format("messages like that")),
    # a voice note reaches the conversation agent only through the voice agent; without its verdict, it is
    # answered as unreadable rather than left unanswered
    ("audio", None, "I couldn't open that voice note (the file seems damaged). Could you record it again?"),
    ("reaction", None, None),
]


async def test_every_kind_gets_a_fitting_answer(stack: Stack) -> None:
    for n, (kind, text, _) in enumerate(KINDS):
        identity = Identity(wa_id=f"3460000{n:04d}")
        await stack.res.bus.publish(c.STREAM_INBOUND, InboundMessage(
            learner=identity.key(), provider="meta", message_id=f"wamid.k{n}", identity=identity, kind=kind, text=text))
    expected = {f"3460000{n:04d}": reply for n, (_, _, reply) in enumerate(KINDS) if reply is not None}
    await stack.fake.wait_for(len(expected), seconds=20)
    assert {m["to"]: m["text"]["body"] for m in stack.fake.sent} == expected


def fresh(name: str, **replace: Any) -> bytes:
    """A fixture with its message timestamps set to now (inside the 24-hour window)."""
    payload = fixture_json(name)
    for entry in payload["entry"]:
        for change in entry["changes"]:
            for message in change["value"].get("messages", []):
                message["timestamp"] = str(int(time.time()))
                message.update(replace)
    return json.dumps(payload).encode()


async def outbound_rows(db: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute(
            "SELECT body, status FROM messages WHERE direction = 'out' ORDER BY id")).fetchall()
    return [(str(a), str(b)) for a, b in rows]


async def test_messages_of_every_kind_are_answered_once_and_marked_read(stack: Stack, db: str) -> None:
    # voice notes take the voice agent's path: tests/voice/test_voice_agent.py
    names = ["wa_text.json", "wa_image.json", "wa_interactive_button_reply.json", "wa_text.json", "wa_reaction.json"]
    for n, name in enumerate(names):  # one at a time: messages sent together would be answered together
        assert (await stack.post(fresh(name, id=f"wamid.kind{n}"))).status_code == 200
        await stack.fake.wait_for(min(n + 1, 4), seconds=20)  # the reaction gets no reply
    bodies = [m["text"]["body"] for m in stack.fake.sent]
    assert bodies[0].startswith("Echo: Does it come")
    assert bodies[2] == "Echo: Cancel"
    assert len(stack.fake.sent) == 4
    assert {r["message_id"] for r in stack.fake.reads} == {f"wamid.kind{n}" for n in range(4)}
    assert all(m["biz_opaque_callback_data"] for m in stack.fake.sent)


async def test_a_closed_window_gets_the_template_and_no_free_form_attempt(stack: Stack, db: str) -> None:
    old = str(int(time.time()) - 30 * 3600)
    assert (await stack.post(fresh("wa_text.json", timestamp=old))).status_code == 200
    await stack.fake.wait_for(1, seconds=20)
    (sent,) = stack.fake.sent
    assert sent["type"] == "template"
    assert sent["template"] == {"name": "charla_continue", "language": {"code": "es"}}
    assert stack.fake.attempts == 1  # nothing else was attempted
    await wait_status(db, "sent")


async def test_without_a_template_a_closed_window_fails_clearly(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server) as stack:
        old = str(int(time.time()) - 30 * 3600)
        await stack.post(fresh("wa_text.json", timestamp=old))
        await eventually(lambda: redis_default.hget(c.ALERTS_KEY, "131047"), 20, "window alert")
    assert stack.fake.sent == []
    assert await outbound_rows(db) == [("Echo: Does it come in another color?", "failed")]


async def post_status(stack: Stack, wamid: str, status: str, tag: str | None = None) -> None:
    value: dict[str, Any] = {"statuses": [{"id": wamid, "status": status, "timestamp": str(int(time.time())),
                                           "recipient_id": "16505551234"}]}
    if tag:
        value["statuses"][0]["biz_opaque_callback_data"] = tag
    body = json.dumps({"entry": [{"changes": [{"field": "messages", "value": value}]}]}).encode()
    assert (await stack.post(body)).status_code == 200


async def statuses_are(db: str, *expected: str) -> bool:
    return [status for _, status in await outbound_rows(db)] == list(expected)


async def wait_status(db: str, expected: str) -> None:
    await eventually(lambda: statuses_are(db, expected), 20, f"reply {expected}")


async def test_statuses_only_move_forward_whatever_their_order(stack: Stack, db: str) -> None:
    await stack.post(fresh("wa_text.json"))
    await stack.fake.wait_for(1, seconds=20)
    await wait_status(db, "sent")
    wamid = stack.fake.ids[0]
    for status in ("read", "delivered", "sent", "read"):
        await post_status(stack, wamid, status)
    await wait_status(db, "read")
    await post_status(stack, wamid, "played")
    await wait_status(db, "played")
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute("SELECT status FROM message_statuses ORDER BY 1")).fetchall()
    assert [r[0] for r in rows] == ["delivered", "played", "read", "sent"]


async def test_a_status_found_by_callback_data_alone(stack: Stack, db: str) -> None:
    await stack.post(fresh("wa_text.json"))
    await stack.fake.wait_for(1, seconds=20)
    await wait_status(db, "sent")
    await post_status(stack, "wamid.unknown-to-us", "delivered", tag=stack.fake.sent[0]["biz_opaque_callback_data"])
    await wait_status(db, "delivered")


async def test_unreachable_recipient_is_marked_and_forgiven_when_they_write(
        stack: Stack, db: str) -> None:
    stack.fake.scripted = [(400, {"error": {"code": 131026, "message": "Message undeliverable"}})]
    await stack.post(fresh("wa_text.json", id="wamid.u1"))
    await wait_status(db, "failed")
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute("SELECT unreachable_reason FROM learners")).fetchone()
    assert row is not None
    assert str(row[0]).startswith("131026")
    await stack.post(fresh("wa_text.json", id="wamid.u2"))  # writing again makes them reachable
    await eventually(lambda: statuses_are(db, "failed", "sent"), 20, "second reply sent")


async def test_expired_token_alerts_the_operator_and_the_reply_waits(stack: Stack, redis_default: Redis) -> None:
    stack.fake.scripted = [(401, fixture_json("wa_send_error_expired_token_190.json"))]
    await stack.post(fresh("wa_text.json"))
    await eventually(lambda: redis_default.hget(c.ALERTS_KEY, "190"), 20, "token alert")
    assert stack.fake.sent == []  # retried later (after 30 s), not dropped


async def test_concurrent_and_restarted_duplicates_get_one_reply(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    body = text_webhook("34600000009", "wamid.dup", "una vez")
    async with serve_fake_graph() as graph:
        for round_ in range(2):  # the second round runs on a freshly started stack
            async with running_stack(db, default_redis_server, graph) as stack:
                answers = await asyncio.gather(*(stack.post(body) for _ in range(5)))
                assert {a.status_code for a in answers} == {200}
                await graph[0].wait_for(1, seconds=20)
                if round_ == 0:
                    await redis_default.delete(*[k async for k in redis_default.scan_iter("charla:dedupe:*")])
        assert [m["text"]["body"] for m in graph[0].sent] == ["Echo: una vez"]
    assert await outbound_rows(db) == [("Echo: una vez", "sent")]


async def queue_reply(res: Any, text: str, choices: list[Choice], provider: str = "meta") -> OutboundMessage:
    """Record an inbound message and a reply offering `choices`, then hand it to the outbox."""
    identity = Identity(wa_id="16505551234", twilio="whatsapp:+16505551234")
    event = (await reply_event(res, identity, text, provider)).model_copy(update={
        "kind": "choices", "choices": choices, "choices_button": "Temas", "via": "whatsapp:+14155238886"})
    await res.bus.publish(c.STREAM_OUTBOX, event)
    return event


async def test_choices_go_out_as_buttons_or_a_list(stack: Stack) -> None:
    asked = await queue_reply(stack.res, "¿Seguimos?", [Choice(id="yes", title="Sí"), Choice(id="no", title="No")])
    await stack.fake.wait_for(1, seconds=20)
    topics = [Choice(id=f"t{n}", title=f"Tema {n}", description="vocabulario") for n in range(5)]
    listed = await queue_reply(stack.res, "Elige un tema", topics)
    await stack.fake.wait_for(2, seconds=20)
    # Contextual replies: WhatsApp quotes the learner's message above the buttons or the list too.
    assert stack.fake.replies_to() == [asked.reply_to, listed.reply_to]
    buttons, listing = (m["interactive"] for m in stack.fake.sent)
    assert buttons["type"] == "button"
    assert [b["reply"]["id"] for b in buttons["action"]["buttons"]] == ["yes", "no"]
    assert listing["type"] == "list"
    assert listing["action"]["button"] == "Temas"
    assert len(listing["action"]["sections"][0]["rows"]) == 5


def test_choices_become_numbered_text_where_buttons_are_not_possible() -> None:
    from charla.channels.base import numbered_parts

    event = OutboundMessage(learner="wa:1", outbound_id="x", provider="twilio", to=Identity(wa_id="1"),
                            kind="choices", text="¿Seguimos?", choices=[Choice(id="y", title="Sí"),
                                                                        Choice(id="n", title="No")])
    assert numbered_parts(event, 1600) == ["¿Seguimos?\n\n1. Sí\n2. No"]
