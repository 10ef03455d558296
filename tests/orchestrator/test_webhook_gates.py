"""Webhooks only with their provider's own secret, and the public surfaces (issue 18, findings 1 and 7)."""

from __future__ import annotations

import psycopg
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from charla.channels import console
from charla.core import constants as c
from charla.core.production import DEV_APP_SECRET, DEV_STRIPE_SECRET
from tests.orchestrator.test_body_limits import in_process
from tests.orchestrator.test_route_audit import META, PRODUCTION, TWILIO
from tests.support.helpers import make_settings


async def test_a_dev_signed_forget_on_a_production_twilio_stack_is_404_and_nothing_is_recorded(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    """The live finding: one POST signed with the published development secret erased a real learner."""
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, **TWILIO, **PRODUCTION)
    body = console.choice_delivery("34600000001", "forget:yes", "Yes, delete", None, name="Victim")
    async with in_process(settings) as client:
        answer = await client.post("/webhooks/whatsapp", content=body, headers={
            "x-hub-signature-256": console.signature(body, DEV_APP_SECRET), "content-type": "application/json"})
        handshake = await client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.challenge": "1"})
    assert (answer.status_code, handshake.status_code) == (404, 404)
    assert "WHATSAPP_APP_SECRET" in answer.json()["error"]
    assert [await redis_default.xlen(stream) for stream in c.CONSUMER_GROUPS] == [0] * len(c.CONSUMER_GROUPS)
    async with await psycopg.AsyncConnection.connect(db) as conn:
        counts = await (await conn.execute(
            "SELECT (SELECT count(*) FROM learners), (SELECT count(*) FROM messages)")).fetchone()
    assert counts == (0, 0)


def test_the_development_secrets_are_only_the_local_consoles() -> None:
    local = make_settings(WHATSAPP_PROVIDER="console")
    assert (local.whatsapp_secret(), local.stripe_signing_secret()) == (DEV_APP_SECRET, DEV_STRIPE_SECRET)
    for env in ({"WHATSAPP_PROVIDER": "meta"}, {"WHATSAPP_PROVIDER": "twilio"}, {**TWILIO, **PRODUCTION}):
        settings = make_settings(**env)
        assert settings.whatsapp_secret() is None
        assert settings.stripe_signing_secret() in (None, "whsec_audit")


@pytest.mark.parametrize("name", ["WHATSAPP_APP_SECRET", "STRIPE_WEBHOOK_SECRET", "CHARLA_METRICS_TOKEN"])
@pytest.mark.parametrize("published", [DEV_APP_SECRET, DEV_STRIPE_SECRET, "changeme"])
def test_production_refuses_a_published_or_placeholder_secret_whatever_the_provider(name: str,
                                                                                     published: str) -> None:
    """A Twilio deployment with WHATSAPP_APP_SECRET left at the development value would mount the Meta
    webhook verified with a published secret."""
    with pytest.raises(ValidationError, match=name):
        make_settings(**{**TWILIO, **PRODUCTION, name: published})


async def test_the_meta_webhook_on_the_local_console_takes_the_development_secret(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, WHATSAPP_PROVIDER="console")
    body = console.text_delivery("ana", "hola")
    async with in_process(settings) as client:
        answer = await client.post("/webhooks/whatsapp", content=body,
                                   headers={"x-hub-signature-256": console.signature(body, DEV_APP_SECRET)})
    assert answer.status_code == 200
    assert await redis_default.xlen(c.STREAM_INBOUND) == 1


async def test_the_schema_is_served_outside_production_only_and_swagger_ui_nowhere(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    for env, schema in (({**META}, 200), ({**META, **PRODUCTION}, 404)):
        async with in_process(make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, **env)) as client:
            assert (await client.get("/openapi.json")).status_code == schema
            assert [(await client.get(path)).status_code for path in ("/docs", "/redoc")] == [404, 404]


async def test_the_consoles_development_webhooks_refuse_a_rebound_host(db: str, default_redis_server: str,
                                                                       redis_default: Redis) -> None:
    """A page that rebinds its own name to 127.0.0.1 could sign deliveries with the published secrets."""
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, WHATSAPP_PROVIDER="console")
    body = console.choice_delivery("34600000001", "forget:yes", "Yes, delete", None, name="Victim")
    async with in_process(settings) as client:
        for path, header, secret in (("/webhooks/whatsapp", "x-hub-signature-256", DEV_APP_SECRET),
                                     ("/webhooks/stripe", "stripe-signature", DEV_STRIPE_SECRET)):
            answer = await client.post(path, content=body, headers={
                "host": "evil.example:8000", header: console.signature(body, secret)})
            assert answer.status_code == 400, path
    assert [await redis_default.xlen(stream) for stream in c.CONSUMER_GROUPS] == [0] * len(c.CONSUMER_GROUPS)
