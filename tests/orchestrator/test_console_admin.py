"""The console's API and the dashboard over HTTP, against the in-process stack (real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.events import Identity, InboundMessage
from charla.ops import analytics, deadletters
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually
from tests.support.payloads import text_webhook

TOKEN = "a-long-operator-token-for-tests"


@pytest.fixture
async def console(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console") as stack:
        yield stack


class Live:
    """The console's server-sent events for one learner, read as the page reads them."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, seconds: float = 30) -> tuple[str, dict[str, Any]]:
        event, data = "", ""
        async with asyncio.timeout(seconds):
            async for line in self.lines:
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data = line.removeprefix("data:").strip()
                elif not line and event:
                    return event, json.loads(data or "{}")
        raise AssertionError("stream ended")

    async def reply(self, seconds: float = 30) -> dict[str, Any]:
        while True:
            event, data = await self.next(seconds)
            if event == "charla" and data.get("type") == "outbound.message":
                return data


@asynccontextmanager
async def live(stack: Stack, handle: str) -> AsyncIterator[Live]:
    async with stack.http.stream("GET", f"/console/api/events?learner={handle}", timeout=60) as response:
        assert response.status_code == 200
        feed = Live(response)
        assert (await feed.next())[0] == "ready"
        yield feed


async def post(stack: Stack, path: str, **body: Any) -> httpx.Response:
    return await stack.http.post(path, json=body)


async def status_of(db: str, provider_message_id: str) -> str:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute(
            """SELECT m.status FROM messages m JOIN outbound_parts p ON p.outbound_id = m.outbound_id
               WHERE p.provider_message_id = %s""", (provider_message_id,))).fetchone()
    return str(row[0]) if row else ""


async def test_text_reply_ticks_and_history(console: Stack, db: str) -> None:
    async with live(console, "ana") as feed:
        sent = await post(console, "/console/api/text", learner="ana", name="Ana", text="Hola, soy Ana")
        assert sent.status_code == 200, sent.text
        mine = sent.json()["message_id"]
        event, receipt = await feed.next()
        assert (event, receipt["type"], receipt["message_id"]) == ("charla", "outbound.read", mine)
        reply = await feed.reply()
        assert reply["text"] == "Echo: Hola, soy Ana"
        assert (await post(console, "/console/api/status", learner="ana", message_id=reply["id"],
                           status="read")).status_code == 200

        async def read(shown: str = reply["id"]) -> bool:
            return await status_of(db, shown) == "read"
        await eventually(read, 30, "the sender to record the console's read status")
    history = (await console.http.get("/console/api/history?learner=ana")).json()
    assert [(m["direction"], m["text"]) for m in history] == [("in", "Hola, soy Ana"), ("out", "Echo: Hola, soy Ana")]
    assert history[1]["status"] == "read"
    assert history[1]["id"] == reply["id"]
    assert (await console.http.get("/console/api/learners")).json()[0]["name"] == "Ana"


async def test_buttons_come_back_as_taps(console: Stack) -> None:
    async with live(console, "bea") as feed:
        await post(console, "/console/api/text", learner="bea", text="delete my data")
        asked = await feed.reply()
        assert [ch["id"] for ch in asked["choices"]] == ["forget:yes", "forget:no"]
        tapped = await post(console, "/console/api/choose", learner="bea", id="forget:no",
                            title=asked["choices"][1]["title"], context=asked["id"])
        assert tapped.status_code == 200
        kept = await feed.reply()
        assert "kept" in kept["text"].lower() or "guard" in kept["text"].lower()


async def test_bad_console_input_is_refused_clearly(db: str, default_redis_server: str,
                                                   redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, WHATSAPP_PROVIDER="console",
                             CHARLA_MAX_MEDIA_BYTES="1000") as stack:
        not_audio = await stack.http.post("/console/api/voice", data={"learner": "cai"},
                                          files={"file": ("notes.txt", b"hello", "text/plain")})
        assert not_audio.status_code == 415
        assert "not audio" in not_audio.json()["error"]
        too_big = await stack.http.post("/console/api/voice", data={"learner": "cai"},
                                        files={"file": ("big.ogg", b"\0" * 2000, "audio/ogg")})
        assert too_big.status_code == 413
        assert (await post(stack, "/console/api/text", learner="bad handle!", text="x")).status_code == 422
        assert (await post(stack, "/console/api/text", learner="cai", text="")).status_code == 422
        unknown = await post(stack, "/console/api/pay", learner="nobody")
        assert unknown.status_code == 404
        assert "send a message first" in unknown.json()["detail"]
        no_plan = await post(stack, "/console/api/clock", learner="nobody")
        assert no_plan.status_code == 409
        assert "no practice scheduled" in no_plan.json()["error"]


async def test_simulated_payment_unlocks_premium(console: Stack, db: str) -> None:
    async with live(console, "dan") as feed:
        await post(console, "/console/api/text", learner="dan", text="Hola")
        await feed.reply()
        paid = await post(console, "/console/api/pay", learner="dan")
        assert paid.status_code == 200, paid.text

        async def active() -> bool:
            async with await psycopg.AsyncConnection.connect(db) as conn:
                row = await (await conn.execute("SELECT status FROM entitlements")).fetchone()
            return row is not None and row[0] == "active"
        await eventually(active, 15, "the payment agent to apply the simulated checkout")
        await post(console, "/console/api/text", learner="dan", text="¿Y ahora?")
        assert (await feed.reply())["text"].startswith(("You're all set", "¡Listo"))


async def test_moving_the_clock_sends_the_scheduled_practice(console: Stack, redis_default: Redis) -> None:
    async with live(console, "eva") as feed:
        await post(console, "/console/api/text", learner="eva", text="practice every day at 7pm")
        await feed.reply()
        moved = await post(console, "/console/api/clock", learner="eva")
        assert moved.status_code == 200, moved.text
        assert moved.json()["clock_offset_s"] > 0
        prompt = await feed.reply(seconds=30)  # the scheduler wakes on the clock change: no tick wait
        assert prompt["text"]
        assert float(await redis_default.get(c.CONSOLE_CLOCK_KEY) or 0) == moved.json()["clock_offset_s"]
    reset = await post(console, "/console/api/clock", reset=True)
    assert reset.json()["clock_offset_s"] == 0


async def test_console_is_absent_with_a_real_provider(db: str, default_redis_server: str,
                                                      redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server) as stack:
        assert (await stack.http.get("/console")).status_code == 404
        assert (await post(stack, "/console/api/text", learner="x", text="hi")).status_code == 404


@pytest.fixture
async def operated(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKEN=TOKEN) as stack:
        yield stack


async def test_dashboard_needs_the_token(operated: Stack) -> None:
    http = operated.http
    assert (await http.get("/admin")).headers["location"] == "/admin/login"
    assert (await http.post("/admin/dead/replay")).status_code == 401
    assert (await http.get("/admin", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 200
    wrong = await log_in(http, "nope")
    assert "belongs to no dashboard operator" in (await http.get(wrong.headers["location"])).text
    assert "charla_admin" not in http.cookies
    right = await log_in(http, TOKEN)
    assert right.status_code == 303
    assert TOKEN not in right.headers["set-cookie"]
    assert "HttpOnly" in right.headers["set-cookie"]
    assert "SameSite=strict" in right.headers["set-cookie"]
    page = await http.get("/admin")
    assert page.status_code == 200
    assert page.text.count("<svg") >= 8
    assert "kozea" not in page.text  # pygal's tooltip script would load from the internet


async def test_dashboard_is_off_without_a_token_in_production_providers(db: str, default_redis_server: str,
                                                                       redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server) as stack:
        off = await stack.http.get("/admin")
        assert off.status_code == 503
        assert "CHARLA_ADMIN_TOKEN" in off.json()["detail"]


async def log_in(http: httpx.AsyncClient, token: str) -> httpx.Response:
    """Log in as the page does: its form carries the login CSRF token the page set."""
    page = await http.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return await http.post("/admin/login", data={"token": token, "csrf": csrf[1]})


async def _learner(stack: Stack, wa_id: str, text: str) -> str:
    await stack.post(text_webhook(wa_id, f"wamid.{wa_id}.{len(stack.fake.sent)}", text))
    await stack.fake.wait_for(len(stack.fake.sent) + 1, seconds=30)
    async with stack.res.pool.connection() as conn:
        row = await (await conn.execute("SELECT id FROM learners WHERE wa_id = %s", (wa_id,))).fetchone()
    assert row is not None
    return str(row[0])


async def test_learner_page_takeover_and_delete(operated: Stack, db: str) -> None:
    http, auth = operated.http, {"authorization": f"Bearer {TOKEN}"}
    learner_id = await _learner(operated, "34600000077", "Yo soy de Madrid")
    page = await http.get(f"/admin/learners/{learner_id}", headers=auth)
    assert page.status_code == 200
    assert "Yo soy de Madrid" in page.text
    assert "Error map" in page.text
    listing = await http.get("/admin/learners?q=3460000007", headers=auth)
    assert learner_id in listing.text
    async with operated.res.pool.connection() as conn:
        today = await analytics.overview(conn)
    assert (today.dau, today.activity.lines["daily active"][-1], today.activity.lines["weekly active"][-1]) == (1, 1, 1)
    assert sum(today.activity.lines["daily active"][:-1]) == 0
    assert (today.messages.lines["from learners"][-1], today.messages.lines["from Charla"][-1]) == (1, 1)

    assert (await http.post(f"/admin/learners/{learner_id}/reply", data={"text": "Hola"}, headers=auth)
            ).headers["location"].endswith("flash=take-first")  # not taken over: refused
    await http.post(f"/admin/learners/{learner_id}/take", headers=auth)
    before = operated.llm.calls("groq")
    await operated.post(text_webhook("34600000077", "wamid.held", "¿Hay alguien?"))
    sent = len(operated.fake.sent)
    await http.post(f"/admin/learners/{learner_id}/reply", data={"text": "Soy Marta, tu tutora."}, headers=auth)
    await operated.fake.wait_for(sent + 1, seconds=30)
    assert operated.fake.sent[-1]["text"]["body"] == "Soy Marta, tu tutora."
    assert operated.llm.calls("groq") == before
    await http.post(f"/admin/learners/{learner_id}/release", headers=auth)

    refused = await http.post(f"/admin/learners/{learner_id}/delete", data={"confirm": "yes"}, headers=auth)
    assert refused.headers["location"].endswith("flash=confirm-delete")
    done = await http.post(f"/admin/learners/{learner_id}/delete", data={"confirm": "DELETE"}, headers=auth)
    assert done.status_code == 303
    async with await psycopg.AsyncConnection.connect(db) as conn:
        for table in ("learners", "messages", "profiles", "turns"):
            column = "id" if table == "learners" else "learner_id"
            row = await (await conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s".encode(),  # noqa: S608
                                            (learner_id,))).fetchone()
            assert row == (0,), table
    assert (await http.get(f"/admin/learners/{learner_id}", headers=auth)).status_code == 404


async def test_dead_letters_replay_and_broadcasts(operated: Stack) -> None:
    http, auth = operated.http, {"authorization": f"Bearer {TOKEN}"}
    poison = InboundMessage(learner="wa:34600000088", provider="meta", message_id="wamid.poison",
                            identity=Identity(wa_id="34600000088"), kind="text", text="Hola de nuevo")
    await operated.res.redis.xadd(c.STREAM_INBOUND + c.DEAD_SUFFIX, {  # as Bus.dead_letter writes it
        "stream": c.STREAM_INBOUND, "group": "conversation", "entry_id": "1-0", "learner": poison.learner,
        "seq": 1, "consumer": "test", "deliveries": 5, "error": "RuntimeError: boom",
        "event": poison.model_dump_json()})
    page = await http.get("/admin/dead", headers=auth)
    assert "RuntimeError: boom" in page.text
    assert "34600000088" not in page.text
    (letter,) = await deadletters.listing(operated.res.redis)
    replayed = await http.post(f"/admin/dead/{letter.dead_id}/replay", headers=auth)
    assert replayed.headers["location"].endswith("flash=replayed")
    await operated.fake.wait_for(1, seconds=30)  # the conversation agent answered the replayed message
    assert "Hola de nuevo" in operated.fake.sent[-1]["text"]["body"]
    assert "None. Every event was handled." in (await http.get("/admin/dead", headers=auth)).text

    preview = await http.post("/admin/broadcasts", data={"text": "Nuevo tema: viajes", "preview": "1"}, headers=auth)
    assert "1 learner(s) match" in (await http.get(preview.headers["location"], headers=auth)).text
    sent = await http.post("/admin/broadcasts", data={"text": "Nuevo tema: viajes"}, headers=auth)
    assert "is going out" in (await http.get(sent.headers["location"], headers=auth)).text
    await operated.fake.wait_for(2, seconds=30)  # paced out by the scheduler agent, sent by the sender
    assert operated.fake.sent[-1]["text"]["body"] == "Nuevo tema: viajes"
    assert "Nuevo tema: viajes" in (await http.get("/admin/broadcasts", headers=auth)).text
