"""The conversation → outbox → sender path in process, against the fake Graph API and real services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest
from redis.asyncio import Redis

from agents import conversation, sender
from charla.channels.chunking import split_text
from charla.channels.meta.graph import (
    GraphAuthError,
    GraphClient,
    GraphPermanentError,
    GraphTransientError,
    graph_error,
)
from charla.core import constants as c
from charla.core.errors import PermanentError
from charla.core.events import Identity, InboundMessage
from charla.core.runtime import Resources, open_resources
from charla.core.worker import Worker
from tests.support.fake_llm import llm_env, serve_fake_llm
from tests.support.helpers import eventually, make_settings
from tests.support.payloads import fixture_json
from tests.support.servers import FakeGraph, serve_fake_graph


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[tuple[Resources, FakeGraph]]:
    async with serve_fake_graph() as (fake, url), serve_fake_llm() as (_, llm_url):
        settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, WHATSAPP_ACCESS_TOKEN="tok",
                                 WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_API_BASE_URL=url,
                                 CHARLA_BUS_MAX_DELIVERIES="4", CHARLA_META_TEXT_LIMIT="40", **llm_env(llm_url))
        async with open_resources(settings, pool_size=4) as res:
            yield res, fake


def inbound(n: int, text: str | None = None) -> InboundMessage:
    identity = Identity(wa_id="34600000001", name="Ana")
    return InboundMessage(id=f"meta:wamid.{n}", learner=identity.key(), provider="meta", message_id=f"wamid.{n}",
                          identity=identity, kind="text", text=text or f"hola {n}")


async def run_agents(res: Resources, until: asyncio.Event) -> None:
    workers = [Worker(res.bus, stream=c.STREAM_INBOUND, group="conversation", consumer="t-conv",
                      handler=conversation.build(res), block_ms=100),
               Worker(res.bus, stream=c.STREAM_OUTBOX, group="sender", consumer="t-send",
                      handler=sender.build(res), block_ms=100)]
    await asyncio.gather(*(w.run(until, drain_timeout=5) for w in workers))


async def statuses(db: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute("SELECT direction, status FROM messages ORDER BY id")).fetchall()
    return [(str(a), str(b)) for a, b in rows]


@pytest.mark.parametrize("status_and_code", [(503, 1), (429, 130429), (400, 131056), (500, 131000)])
async def test_transient_graph_errors_are_retried_until_sent(
        stack: tuple[Resources, FakeGraph], db: str, status_and_code: tuple[int, int]) -> None:
    res, fake = stack
    status, code = status_and_code
    fake.scripted = [(status, {"error": {"code": code, "message": "try later"}})] * 2
    stop = asyncio.Event()
    await res.bus.publish(c.STREAM_INBOUND, inbound(1))
    agents = asyncio.create_task(run_agents(res, stop))
    await fake.wait_for(1, seconds=20)
    stop.set()
    await agents
    assert fake.sent[0]["text"]["body"] == "Echo: hola 1"
    assert fake.sent[0]["context"] == {"message_id": "wamid.1"}
    assert fake.attempts == 3
    assert await statuses(db) == [("in", "answered"), ("out", "sent")]


async def test_permanent_graph_error_is_recorded_not_retried(stack: tuple[Resources, FakeGraph], db: str) -> None:
    res, fake = stack
    fake.scripted = [(400, fixture_json("wa_send_error_131047.json"))]
    await res.bus.publish(c.STREAM_INBOUND, inbound(1))
    stop = asyncio.Event()
    agents = asyncio.create_task(run_agents(res, stop))

    async def failed() -> bool:
        return ("out", "failed") in await statuses(db)

    await eventually(failed, 20, "the first reply recorded as failed")
    await res.bus.publish(c.STREAM_INBOUND, inbound(2))
    await fake.wait_for(1, seconds=20)  # the next reply still goes out
    stop.set()
    await agents
    assert fake.attempts == 2
    assert await statuses(db) == [("in", "answered"), ("out", "failed"), ("in", "answered"), ("out", "sent")]
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute("SELECT error FROM messages WHERE status = 'failed'")).fetchone()
    assert row is not None
    assert row[0]["code"] == 131047


@pytest.mark.parametrize(("status", "fixture", "kind"), [
    (400, "wa_send_error_131047.json", GraphPermanentError),
    (401, "wa_send_error_expired_token_190.json", GraphAuthError),
])
def test_graph_errors_map_to_typed_errors(status: int, fixture: str, kind: type[Exception]) -> None:
    error = graph_error(status, json.dumps(fixture_json(fixture)).encode())
    assert isinstance(error, kind)
    assert error.code == fixture_json(fixture)["error"]["code"]


def test_throttling_and_server_errors_are_transient() -> None:
    assert isinstance(graph_error(400, b'{"error": {"code": 130429}}'), GraphTransientError)
    assert isinstance(graph_error(502, b"<html>bad gateway</html>", "Bad Gateway"), GraphTransientError)


async def test_a_long_reply_goes_out_in_parts_resuming_after_a_failure(
        stack: tuple[Resources, FakeGraph], db: str) -> None:
    res, fake = stack
    text = "Primera frase bastante larga. Segunda frase también larga. Tercera y última frase."
    await res.bus.publish(c.STREAM_INBOUND, inbound(1, text))
    fake.fail_at[2] = (503, {"error": {"code": 1, "message": "blip"}})  # the second part fails once
    stop = asyncio.Event()
    agents = asyncio.create_task(run_agents(res, stop))
    expected = split_text(f"Echo: {text}", 40)
    await fake.wait_for(len(expected), seconds=20)
    stop.set()
    await agents
    assert len(expected) > 2
    assert [m["text"]["body"] for m in fake.sent] == expected  # in order, none repeated
    assert fake.sent[0]["context"] == {"message_id": "wamid.1"}
    assert all("context" not in m for m in fake.sent[1:])
    assert await statuses(db) == [("in", "answered"), ("out", "sent")]


@pytest.fixture
async def graph_client() -> AsyncIterator[tuple[GraphClient, FakeGraph]]:
    async with serve_fake_graph() as (fake, url), aiohttp.ClientSession() as http:
        yield GraphClient(http, base_url=url, token="tok", phone_number_id="106540352242922"), fake


def without_product(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in ("biz_opaque_callback_data",)}


async def test_voice_note_is_uploaded_then_sent_as_in_the_fixture(graph_client: tuple[GraphClient, FakeGraph]) -> None:
    client, fake = graph_client
    media_id = await client.upload_voice(b"OggS-voice-note")
    await client.send_voice("+16505551234", media_id)
    assert fake.uploads == [("audio/ogg", b"OggS-voice-note")]
    assert without_product(fake.sent[0]) == fixture_json("wa_send_audio_request.json")


async def test_template_request_matches_the_fixture(graph_client: tuple[GraphClient, FakeGraph]) -> None:
    client, fake = graph_client
    await client.send_template("+16505551234", "order_confirmation", "en_US", body_params=["Sheena", "ORD-9271"])
    assert fake.sent[0] == fixture_json("wa_send_template_request.json")


async def test_interactive_messages_respect_whatsapp_limits(graph_client: tuple[GraphClient, FakeGraph]) -> None:
    client, fake = graph_client
    await client.send_buttons("34600000001", "¿Seguimos?", [("yes", "Sí"), ("later", "Más tarde")])
    await client.send_list("34600000001", "Elige un tema", "Temas", [("food", "Cocina", "Vocabulario de cocina")])
    assert fake.sent[0]["interactive"]["action"]["buttons"][1] == {"type": "reply",
                                                                   "reply": {"id": "later", "title": "Más tarde"}}
    assert fake.sent[1]["interactive"]["action"]["sections"][0]["rows"][0]["id"] == "food"
    with pytest.raises(PermanentError, match="4 buttons"):
        await client.send_buttons("1", "x", [(str(i), str(i)) for i in range(4)])
    with pytest.raises(PermanentError, match="over 20 characters"):
        await client.send_buttons("1", "x", [("a", "a title that is far too long")])
    with pytest.raises(PermanentError, match="11 rows"):
        await client.send_list("1", "x", "Temas", [(str(i), "t", "d") for i in range(11)])
    assert len(fake.sent) == 2  # nothing invalid reached the API
