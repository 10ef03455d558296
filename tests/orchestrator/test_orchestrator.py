"""The orchestrator app driven in process against real Redis and PostgreSQL, with the real fixtures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from charla.cli.redis_server import EmbeddedRedis, redis_server_binary
from charla.cli.services import free_port
from charla.core import constants as c
from charla.core.events import InboundMessage, decode_event
from orchestrator.app import create_app
from tests.support.helpers import entries, make_settings
from tests.support.payloads import APP_SECRET, fixture_bytes, fixture_json, sign, text_webhook
from tests.support.servers import serve

VECTORS = fixture_json("wa_signature_vectors.json")


def app_for(db: str, redis_url: str, **extra: str) -> FastAPI:
    env = {"DATABASE_URL": db, "REDIS_URL": redis_url, "WHATSAPP_APP_SECRET": APP_SECRET,
           "WHATSAPP_VERIFY_TOKEN": "meatyhamhock", "WHATSAPP_ACCESS_TOKEN": "token",
           "WHATSAPP_PHONE_NUMBER_ID": "106540352242922", **extra}
    return create_app(make_settings(**env))


@asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` served by uvicorn on loopback: the real HTTP stack, lifespan included."""
    async with serve(app, lifespan="on") as url, httpx.AsyncClient(base_url=url) as client:
        yield client


@pytest.fixture
async def client(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_for(db, default_redis_server)) as http:
        yield http


async def published(redis: Redis) -> list[InboundMessage]:
    events = [decode_event(fields[b"e"]) for _, fields in await entries(redis, c.STREAM_INBOUND)]
    return [e for e in events if isinstance(e, InboundMessage)]


async def post(client: httpx.AsyncClient, body: bytes, signature: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature != "":
        headers["x-hub-signature-256"] = signature or sign(body)
    return await client.post("/webhooks/whatsapp", content=body, headers=headers)


async def test_verification_handshake(client: httpx.AsyncClient) -> None:
    fixture = fixture_json("wa_webhook_verify_get.json")
    ok = await client.get("/webhooks/whatsapp", params=fixture["query"])
    assert ok.status_code == 200
    assert ok.text == fixture["expected_response"]["body"]
    assert ok.headers["content-type"].startswith("text/plain")
    wrong = await client.get("/webhooks/whatsapp", params={**fixture["query"], "hub.verify_token": "nope"})
    assert wrong.status_code == 403
    assert (await client.get("/webhooks/whatsapp")).status_code == 403


@pytest.mark.parametrize("name", sorted(VECTORS["computed_for_fixture_files"]["files"]))
async def test_every_signed_fixture_is_accepted(client: httpx.AsyncClient, redis_default: Redis, name: str) -> None:
    """What each one publishes is checked in test_whatsapp_edge; here: accepted, and every item counted."""
    body = fixture_bytes(name)
    response = await post(client, body, VECTORS["computed_for_fixture_files"]["files"][name])
    assert response.status_code == 200
    values = [ch["value"] for e in json.loads(body)["entry"] for ch in e["changes"]]
    items = sum(len(v.get(key, [])) for v in values for key in ("messages", "statuses", "errors"))
    assert response.json()["published"] == items > 0


async def test_genuine_meta_delivery_verifies(db: str, default_redis_server: str, redis_default: Redis) -> None:
    vector = VECTORS["genuine_vector"]
    app = app_for(db, default_redis_server, WHATSAPP_APP_SECRET=vector["app_secret"])
    async with client_for(app) as client:
        response = await post(client, fixture_bytes(vector["body_file"]), vector["x_hub_signature_256"])
        assert response.status_code == 200
    (event,) = await published(redis_default)
    assert event.text == "Hey there! I am using PyWa."
    assert event.identity.wa_id == "972544401243"
    assert event.identity.name == "PyWa Tests"


@pytest.mark.parametrize("signature", ["", "sha256=00", "sha1=abc", sign(b"other body")])
async def test_bad_signatures_are_refused_and_nothing_is_published(
        client: httpx.AsyncClient, redis_default: Redis, signature: str) -> None:
    response = await post(client, fixture_bytes("wa_text.json"), signature)
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["error"]
    assert await published(redis_default) == []


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await post(client, b'{"entry": [')
    assert response.status_code == 400


async def test_odd_but_valid_json_publishes_nothing(client: httpx.AsyncClient, redis_default: Redis) -> None:
    for body in (b"[]", b"null", b'{"entry": "x"}', b'{"entry": [{"changes": [{"value": {"messages": [{}]}}]}]}'):
        assert (await post(client, body)).status_code == 200
    assert await published(redis_default) == []


async def test_oversized_bodies_are_refused(db: str, default_redis_server: str, redis_default: Redis) -> None:
    app = app_for(db, default_redis_server, CHARLA_MAX_BODY_BYTES="1000")
    body = text_webhook("34600000001", "wamid.big", "x" * 2000)
    async with client_for(app) as client:
        assert (await post(client, body)).status_code == 413

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 256):
                yield body[start:start + 256]

        streamed = await client.post("/webhooks/whatsapp", content=chunks(),
                                     headers={"x-hub-signature-256": sign(body)})
        assert streamed.status_code == 413
    assert await published(redis_default) == []


async def test_retried_delivery_is_published_once(client: httpx.AsyncClient, redis_default: Redis) -> None:
    body = fixture_bytes("wa_text.json")
    first, second = await post(client, body), await post(client, body)
    assert (first.json()["published"], second.json()["published"]) == (1, 0)
    assert len(await published(redis_default)) == 1


async def test_business_scoped_user_without_phone_is_keyed_on_user_id(
        client: httpx.AsyncClient, redis_default: Redis) -> None:
    payload: dict[str, Any] = {"entry": [{"changes": [{"value": {
        "contacts": [{"profile": {"name": "Bea"}, "user_id": "US.13491208655302741918"}],
        "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.bsuid1", "type": "text",
                      "text": {"body": "hola"}}]}}]}]}
    assert (await post(client, json.dumps(payload).encode())).status_code == 200
    (event,) = await published(redis_default)
    assert event.learner == "bsuid:US.13491208655302741918"
    assert event.identity.wa_id is None
    assert event.identity.name == "Bea"


async def test_healthz_reports_each_dependency(client: httpx.AsyncClient, db: str) -> None:
    ok = await client.get("/healthz")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok", "redis": "ok", "postgres": "ok"}
    async with client_for(app_for(db, f"redis://127.0.0.1:{free_port()}/0")) as broken:
        down = await broken.get("/healthz")
        assert down.status_code == 503
        assert down.json()["postgres"] == "ok"
        assert down.json()["redis"].startswith("error")


async def test_full_backlog_answers_503_and_the_retry_is_accepted_later(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    app = app_for(db, default_redis_server, CHARLA_BUS_MAX_BACKLOG="1")
    first, second = text_webhook("34600000001", "wamid.b1", "uno"), text_webhook("34600000001", "wamid.b2", "dos")
    async with client_for(app) as client:
        assert (await post(client, first)).status_code == 200
        busy = await post(client, second)
        assert busy.status_code == 503  # WhatsApp retries later; nothing was marked seen
        await redis_default.xtrim(c.STREAM_INBOUND, maxlen=0)  # the agents caught up
        assert (await post(client, second)).json()["published"] == 1


async def test_redis_down_answers_503_and_the_retry_is_accepted_once_it_is_back(db: str, home: Path) -> None:
    """Found by the chaos run: a Redis restart made the webhook answer 500. It must be an honest 503."""
    server = EmbeddedRedis(home / "redis-restarted", free_port(), redis_server_binary())
    server.start()
    try:
        body = text_webhook("34600000001", "wamid.r1", "hola")
        async with client_for(app_for(db, server.url)) as client:
            server.stop()
            down = await post(client, body)
            assert (down.status_code, down.headers["retry-after"]) == (503, "1")
            assert down.json() == {"error": "temporarily unavailable, retry later"}
            server.start()
            assert (await post(client, body)).json()["published"] == 1
    finally:
        server.stop()
