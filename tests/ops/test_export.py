"""A learner's data export (issue 18, finding 6): every learner table, nothing of anyone else's, no embeddings;
delivered as a WhatsApp document on Meta, Twilio and the console; the dashboard's download."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psycopg
import pytest
from redis.asyncio import Redis

from agents import sender
from charla.channels.registry import open_channels
from charla.core import constants as c
from charla.core.events import Identity, OutboundMessage
from charla.ops import export
from charla.store import learners, session
from tests.agents.test_conversation import say
from tests.channels.test_twilio import INBOUND, TOKEN, post_form
from tests.orchestrator.test_console_admin import live, post
from tests.support.harness import running_stack
from tests.support.helpers import eventually
from tests.support.servers import FakeTwilio, serve_fake_twilio

pytestmark = pytest.mark.timeout(120)

ADMIN = "an-operator-token-for-the-export-tests"
ZERO = "[" + ",".join(["0"] * 384) + "]"


async def seed(conn: psycopg.AsyncConnection[Any], tag: str) -> uuid.UUID:
    """A learner with a row in every learner table, each carrying `tag` where it can."""
    learner = await learners.upsert(conn, Identity(console=tag, name=f"name-{tag}"))
    one: dict[str, Any] = {"id": learner, "tag": tag, "zero": ZERO}
    await conn.execute("UPDATE profiles SET data = jsonb_build_object('name', %(tag)s::text) WHERE learner_id = %(id)s",
                       one)
    await conn.execute("INSERT INTO profiles (learner_id, data) VALUES (%(id)s, jsonb_build_object('name', "
                       "%(tag)s::text)) ON CONFLICT DO NOTHING", one)
    row = await (await conn.execute(
        "INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body, status) "
        "VALUES (%(id)s, 'in', 'console', %(tag)s, 'text', 'hola ' || %(tag)s, 'answered') RETURNING id",
        one)).fetchone()
    assert row is not None
    one["msg"] = row[0]
    statements = [
        "INSERT INTO turns (learner_id, reply_to, inbound_ids, provider, cost_usd, corrections) VALUES "
        "(%(id)s, %(msg)s, ARRAY[%(msg)s]::bigint[], 'groq', 0.000123, jsonb_build_array(%(tag)s::text))",
        "INSERT INTO pending_turns (learner_id, event, next_attempt_at) VALUES (%(id)s, "
        "jsonb_build_object('text', %(tag)s::text), now())",
        "INSERT INTO memories (learner_id, kind, content, embedding, source_refs) VALUES (%(id)s, 'moment', "
        "'memory ' || %(tag)s, %(zero)s::vector, ARRAY[%(tag)s])",
        "INSERT INTO schedules (learner_id, rule, timezone) VALUES (%(id)s, 'practice', 'Europe/Madrid')",
        "INSERT INTO practice_prompts (learner_id, kind, slot_at, status, body) VALUES "
        "(%(id)s, 'practice', now(), 'queued', 'prompt ' || %(tag)s)",
        "INSERT INTO practice_cards (learner_id, item, card, due) VALUES (%(id)s, 'word:' || %(tag)s, '{}', now())",
        "INSERT INTO entitlements (learner_id, status, kind, status_at) VALUES (%(id)s, 'active', 'subscription', 1)",
        "INSERT INTO daily_usage (learner_id, day, used) VALUES (%(id)s, current_date, 3)",
        "INSERT INTO payments (learner_id, stripe_event_id, kind, status, amount_cents, currency) VALUES "
        "(%(id)s, 'evt_pay_' || %(tag)s, 'checkout', 'paid', 999, 'eur')",
        "INSERT INTO stripe_events (id, type, created, learner_id, state, payload) VALUES ('evt_' || %(tag)s, "
        "'charge.succeeded', 1, %(id)s, 'applied', '{\"payment_method_details\": {\"card\": {\"last4\": \"4242\"}}}')",
        "INSERT INTO broadcast_recipients (broadcast_id, learner_id, outbound_id) VALUES ((SELECT id FROM broadcasts "
        "LIMIT 1), %(id)s, gen_random_uuid())",
        "INSERT INTO learner_aliases (kind, value, learner_id) VALUES ('wa_id', 'old-' || %(tag)s, %(id)s)",
        "INSERT INTO learner_events (learner_id, kind, detail) VALUES (%(id)s, 'number_changed', "
        "jsonb_build_object('from', %(tag)s::text))",
        "INSERT INTO activities (learner_id, kind, state) VALUES (%(id)s, 'placement', jsonb_build_object('item', 1))",
        "INSERT INTO wordbook (learner_id, word, source) VALUES (%(id)s, 'word ' || %(tag)s, 'command')",
    ]
    for statement in statements:
        await conn.execute(statement.encode(), one)
    return learner


async def test_every_table_with_a_learner_id_is_exported(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'learner_id'")).fetchall()
    assert {str(r[0]) for r in rows} == {t.name for t in export.TABLES}


async def test_the_export_holds_all_of_one_learner_and_nothing_else(db: str, redis_default: Redis) -> None:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("INSERT INTO broadcasts (created_by, text, rate) VALUES ('op', 'news', 1)")
        ana, beto = await seed(conn, "ana"), await seed(conn, "beto")
        await session.save(redis_default, "console:ana", session.Session(summary="ana's summary"), 60)
        document = await export.export(conn, ana, redis=redis_default)
        with pytest.raises(export.UnknownLearner):
            await export.export(conn, uuid.uuid4())
    assert document["schema_version"] == export.SCHEMA_VERSION
    assert document["exported_at"]
    assert (document["learner"]["id"], document["learner"]["console_id"]) == (str(ana), "ana")
    assert document["learner"]["display_name"] == "name-ana"
    for table in export.TABLES:
        rows = [document[table.name]] if table.single else document[table.name]
        assert len(rows) == 1, table.name  # the seeded row, and only it
        assert rows[0], table.name
        assert all("learner_id" not in row for row in rows)
    assert document["profiles"]["data"] == {"name": "ana"}
    assert document["messages"][0]["body"] == "hola ana"
    assert document["turns"][0]["cost_usd"] == pytest.approx(0.000123)
    assert document["memories"][0]["content"] == "memory ana"
    assert "embedding" not in document["memories"][0]
    assert "payload" not in document["stripe_events"][0]  # Stripe objects can carry card details
    assert document["payments"][0]["amount_cents"] == 999
    assert document["sessions"] == {"console:ana": session.Session(summary="ana's summary").model_dump(mode="json")}
    text = export.dumps(document)
    assert orjson.loads(text) == document
    assert b"beto" not in text
    assert str(beto).encode() not in text
    assert b"4242" not in text


async def test_send_me_my_data_on_meta_uploads_and_sends_the_document(
        db: str, default_redis_server: str, redis_default: Redis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_stack(db, default_redis_server) as stack:
        await say(stack, "my level is B1")
        await stack.fake.wait_for(1, seconds=10)
        await say(stack, "send me my data")
        await stack.fake.wait_for(3, seconds=15)
        summary, document = stack.fake.sent[1], stack.fake.sent[2]
        assert summary["text"]["body"].startswith("*Your data at Charla*")
        assert document["type"] == "document"
        assert document["document"]["id"] == "1013859600285441"
        assert document["document"]["filename"] == "charla-data.json"
        assert document["document"]["caption"].startswith("Here is everything I keep about you, as a JSON file")
        assert stack.fake.upload_names == [("charla-data.json", "text/plain")]
        _content_type, data = stack.fake.uploads[0]
        exported = orjson.loads(data)
        assert exported["learner"]["wa_id"] == "34600000001"
        assert exported["profiles"]["data"]["level"] == "B1"
        assert "send me my data" in [m["body"] for m in exported["messages"]]

        async def sent() -> bool:
            async with await psycopg.AsyncConnection.connect(db) as conn:
                row = await (await conn.execute("SELECT status, outbound_id FROM messages WHERE kind = 'document'"
                                                )).fetchone()
            return row is not None and row[0] == "sent"
        await eventually(sent, 10, "the document to be recorded as sent")
        assert not await redis_default.keys(c.MEDIA_KEY.format(token="doc:*"))  # Meta has it: not kept
        async with await psycopg.AsyncConnection.connect(db) as conn:
            row = await (await conn.execute("SELECT outbound_id FROM messages WHERE kind = 'document'")).fetchone()
        assert row is not None
        again = OutboundMessage(learner="wa:34600000001", outbound_id=str(row[0]), provider="meta",
                                to=Identity(wa_id="34600000001"), kind="document", text="x", document="gone")
        await sender.send(stack.res, open_channels(stack.res), again)  # a redelivery sends nothing twice
        assert len(stack.fake.sent) == 3
        assert len(stack.fake.uploads) == 1
    assert not any(b'"schema_version"' in r.getMessage().encode() for r in caplog.records)  # never logged


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    async with serve_fake_twilio() as served:
        yield served


async def test_send_me_my_data_on_twilio_is_a_media_url_serving_the_json(
        db: str, default_redis_server: str, redis_default: Redis, twilio: tuple[FakeTwilio, str]) -> None:
    fake = twilio[0]
    env = {"WHATSAPP_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
           "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE_URL": twilio[1], "CHARLA_PUBLIC_URL": "https://example.com"}
    async with running_stack(db, default_redis_server, **env) as stack:
        assert await post_form(stack, {**INBOUND, "Body": "send me my data", "MessageSid": "SM" + "1" * 32}) == 200
        await fake.wait_for(2, seconds=15)
        media = [m for m in fake.sent if "MediaUrl" in m]
        assert len(media) == 1
        assert media[0]["Body"].startswith("Here is everything I keep about you")
        url = media[0]["MediaUrl"]
        assert url.startswith("https://example.com/media/")
        assert url.endswith(".json")
        served = await stack.http.get(url.removeprefix("https://example.com"))
        assert served.status_code == 200
        assert served.headers["content-type"] == "application/json"
        assert served.headers["content-disposition"] == 'attachment; filename="charla-data.json"'
        assert served.headers["cache-control"] == "no-store"
        exported = orjson.loads(served.content)
        assert exported["learner"]["twilio_id"] == "whatsapp:+16505551234"
        assert "send me my data" in [m["body"] for m in exported["messages"]]
        assert (await stack.http.get("/media/" + "x" * 32 + ".json")).status_code == 404  # no such token
        assert (await stack.http.get("/media/short.json")).status_code == 404


async def test_send_me_my_data_in_the_console_links_the_file(db: str, default_redis_server: str,
                                                             redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console") as stack, \
            live(stack, "eva") as feed:
        await post(stack, "/console/api/text", learner="eva", name="Eva", text="send me my data")
        summary, document = await feed.reply(), await feed.reply()
        assert summary["kind"] == "text"
        assert summary["text"].startswith("*Your data at Charla*")
        assert document["kind"] == "document"
        assert document["document"]
        assert document["text"].startswith("Here is everything I keep about you")
        served = await stack.http.get(f"/media/{document['document']}.json")
        exported = orjson.loads(served.content)
        assert exported["learner"]["display_name"] == "Eva"
        assert "send me my data" in [m["body"] for m in exported["messages"]]


async def test_the_dashboard_downloads_the_same_file(db: str, default_redis_server: str,
                                                      redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKEN=ADMIN) as stack:
        await say(stack, "Hola")
        await stack.fake.wait_for(1, seconds=10)
        async with await psycopg.AsyncConnection.connect(db) as conn:
            learner_id = await learners.find(conn, Identity(wa_id="34600000001"))
        path = f"/admin/learners/{learner_id}/export"
        refused = await stack.http.get(path)
        assert refused.status_code == 303
        assert refused.headers["location"] == "/admin/login"
        wrong = await stack.http.get(path, headers={"authorization": "Bearer nope"})
        assert wrong.status_code != 200
        assert b"schema_version" not in wrong.content
        auth = {"authorization": f"Bearer {ADMIN}"}
        answer = await stack.http.get(path, headers=auth)
        assert answer.status_code == 200
        assert answer.headers["content-disposition"] == 'attachment; filename="charla-data.json"'
        exported = orjson.loads(answer.content)
        assert exported["learner"]["id"] == str(learner_id)
        assert [m["body"] for m in exported["messages"]] == ["Hola", "Echo: Hola"]
        assert (await stack.http.get(f"/admin/learners/{uuid.uuid4()}/export", headers=auth)).status_code == 404
        page = await stack.http.get(f"/admin/learners/{learner_id}", headers=auth)
        assert f'action="/admin/learners/{learner_id}/export"' in page.text
