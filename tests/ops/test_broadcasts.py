"""Operator broadcasts against real PostgreSQL and Redis: segments, pacing, replicas, the 24-hour window,
the daily template tier, delivery counts, cancelling, the CLI, and sends through the running stack."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

from charla.cli.root import app
from charla.core import constants as c
from charla.core.events import Identity, OutboundMessage, Template, decode_event
from charla.core.runtime import Resources, open_resources
from charla.ops import broadcast_dispatch, broadcasts
from charla.ops.broadcast_dispatch import Pacer
from charla.ops.broadcasts import Segment
from charla.store import learners, profile
from charla.store.messages import Conn
from tests.support.harness import running_stack
from tests.support.helpers import entries, eventually, make_settings
from tests.support.payloads import text_webhook

NOW = datetime.now(UTC)
OPEN = NOW - timedelta(hours=1)  # wrote an hour ago: inside the 24-hour window
CLOSED = NOW - timedelta(hours=30)
NOTICE = Template(name="charla_notice", language="es", body_params=["{name}", "{text}"])


@asynccontextmanager
async def opened(db: str, redis_url: str, **env: str) -> AsyncIterator[Resources]:
    settings = make_settings(DATABASE_URL=db, REDIS_URL=redis_url, **env)
    async with open_resources(settings, pool_size=4) as res:
        yield res


@pytest.fixture
async def res(clean: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Resources]:
    async with opened(clean, default_redis_server) as resources:
        yield resources


@pytest.fixture
async def clean(db: str) -> str:
    """The database with no broadcasts either (the shared fixture empties learner tables only)."""
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("TRUNCATE broadcasts CASCADE")
    return db


async def learner(conn: Conn, wa_id: str | None, *, language: str | None = "es", level: str | None = "B1",
                  paid: str | None = None, last_inbound: datetime | None = OPEN, inferred: str | None = None,
                  console: str | None = None) -> uuid.UUID:
    """A learner as the real code paths leave one: upserted, last message time, profile, entitlement."""
    learner_id = await learners.upsert(conn, Identity(wa_id=wa_id, console=console, name=f"L{wa_id or console}"))
    await conn.execute("UPDATE learners SET last_inbound_at = %s WHERE id = %s", (last_inbound, learner_id))

    def seed(p: profile.Profile) -> None:
        p.target_language, p.level, p.level_inferred = language, level, inferred

    await profile.update(conn, learner_id, seed)
    if paid:
        await conn.execute("""INSERT INTO entitlements (learner_id, status, kind, status_at)
                              VALUES (%s, %s, 'subscription', 0)""", (learner_id, paid))
    return learner_id


async def outbox(redis: Redis) -> list[OutboundMessage]:
    found = [decode_event(f[b"e"]) for _, f in await entries(redis, c.STREAM_OUTBOX)]
    return [e for e in found if isinstance(e, OutboundMessage)]


async def recipients(conn: Conn, broadcast_id: int) -> dict[uuid.UUID, tuple[str, str | None]]:
    rows = await (await conn.execute("SELECT learner_id, state, reason FROM broadcast_recipients "
                                     "WHERE broadcast_id = %s", (broadcast_id,))).fetchall()
    return {uuid.UUID(str(r[0])): (str(r[1]), None if r[2] is None else str(r[2])) for r in rows}


async def test_segments_filter_by_language_level_and_payment(res: Resources, redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        ana = await learner(conn, "34600000001", paid="active")
        beto = await learner(conn, "34600000002", level="A2")
        chloe = await learner(conn, "33600000003", language="fr", paid="active")
        dani = await learner(conn, "34600000004", language=None, level=None, inferred="B1")  # tutored in the default
        eva = await learner(conn, "34600000005", paid="past_due")  # still served, but not "paid" here
        gone = await learner(conn, "34600000006")
        await conn.execute("UPDATE learners SET unreachable_at = now() WHERE id = %s", (gone,))
        await learner(conn, "34600000007", paid="active")  # blocked below
        blocked = ["wa:34600000007"]

        async def count(segment: Segment, default: str | None = "es") -> int:
            return await broadcasts.audience(conn, segment, default_language=default, blocked=blocked)

        assert await count(Segment()) == 5
        assert await broadcasts.audience(conn, Segment()) == 6  # nobody blocked: only the unreachable one is out
        assert await count(Segment(language="es")) == 4
        assert await count(Segment(language="es"), default=None) == 3
        assert await count(Segment(language="FR")) == 1
        assert await count(Segment(level="b1")) == 4
        assert await count(Segment(paid=True)) == 2
        assert await count(Segment(paid=False)) == 3
        assert await count(Segment(language="es", level="B1", paid=True)) == 1
        broadcast_id = await broadcasts.create(conn, Segment(language="es", level="B1"), "Hola",
                                               default_language="es", blocked=blocked)
        found = await recipients(conn, broadcast_id)
        ids = await (await conn.execute("SELECT outbound_id FROM broadcast_recipients")).fetchall()
    assert set(found) == {ana, dani, eva}
    assert {state for state, _ in found.values()} == {"pending"}
    assert {uuid.UUID(str(r[0])) for r in ids} == {broadcasts.outbound_id(broadcast_id, x) for x in (ana, dani, eva)}
    assert {beto, chloe}.isdisjoint(found)


async def test_dispatch_queues_at_most_the_limit_per_call(res: Resources, redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        for n in range(7):
            await learner(conn, f"3460000010{n}")
        broadcast_id = await broadcasts.create(conn, Segment(), "Mañana no hay clases")
    assert [await broadcast_dispatch.dispatch(res, 3) for _ in range(4)] == [3, 3, 1, 0]
    sent = await outbox(redis_default)
    assert len({m.outbound_id for m in sent}) == len(sent) == 7
    assert {(m.kind, m.text) for m in sent} == {("text", "Mañana no hay clases")}
    async with res.pool.connection() as conn:
        rows = await (await conn.execute(
            """SELECT m.kind, m.status, m.payload->>'broadcast' FROM broadcast_recipients r
               JOIN messages m ON m.outbound_id = r.outbound_id WHERE r.state = 'queued'""")).fetchall()
        found = await broadcasts.summary(conn, broadcast_id)
    assert rows == [("text", "queued", str(broadcast_id))] * 7  # recorded for the sender before publishing
    assert (found.status, found.recipients, found.queued, found.pending) == ("done", 7, 7, 0)


async def test_the_pacer_queues_at_the_configured_rate(clean: str, default_redis_server: str,
                                                       redis_default: Redis) -> None:
    now = [1000.0]
    async with opened(clean, default_redis_server, CHARLA_BROADCAST_RATE="5") as res:
        async with res.pool.connection() as conn:
            for n in range(12):
                await learner(conn, f"3460000020{n:02d}")
            await broadcasts.create(conn, Segment(), "Notice")
        pacer = Pacer(res, clock=lambda: now[0])
        assert await pacer.step() == 5  # a second's worth at once
        assert await pacer.step() == 0  # then nothing until time passes
        now[0] += 0.4
        assert await pacer.step() == 2
        assert await pacer.step() == 0
        now[0] += 100  # a long pause saves up one second's worth, no more
        assert await pacer.step() == 5
        now[0] += 100
        assert await pacer.step() == 0  # everyone has it
    assert len(await outbox(redis_default)) == 12


async def test_two_dispatchers_never_queue_the_same_recipient(clean: str, default_redis_server: str,
                                                              redis_default: Redis) -> None:
    async with opened(clean, default_redis_server) as one, opened(clean, default_redis_server) as two:
        async with one.pool.connection() as conn:
            for n in range(60):
                await learner(conn, f"346000003{n:02d}", last_inbound=OPEN if n % 3 else CLOSED)
            await broadcasts.create(conn, Segment(), "Notice", template=NOTICE)
        rounds = []
        while True:
            done = await asyncio.gather(broadcast_dispatch.dispatch(one, 7), broadcast_dispatch.dispatch(two, 7),
                                        broadcast_dispatch.dispatch(one, 7), broadcast_dispatch.dispatch(two, 7))
            rounds.append(done)
            if sum(done) == 0:
                break
        total = sum(sum(r) for r in rounds)
    sent = await outbox(redis_default)
    assert total == len(sent) == 60
    assert len({m.outbound_id for m in sent}) == 60
    assert sum(m.kind == "template" for m in sent) == 20


async def test_outside_the_window_the_template_else_skipped(res: Resources, redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        inside = await learner(conn, "34600000401")
        outside = await learner(conn, "34600000402", last_inbound=CLOSED)
        never = await learner(conn, "34600000403", last_inbound=None)
        local = await learner(conn, None, console="ana", last_inbound=CLOSED)  # the console has no window
        with_template = await broadcasts.create(conn, Segment(), "Clase extra el sábado", template=NOTICE)
        without = await broadcasts.create(conn, Segment(), "Sin plantilla")
    assert await broadcast_dispatch.dispatch(res, 100) == 6
    sent = {(m.to.wa_id or m.to.console, m.text): m for m in await outbox(redis_default)}
    assert {key: m.kind for key, m in sent.items()} == {
        ("34600000401", "Clase extra el sábado"): "text", ("34600000402", "Clase extra el sábado"): "template",
        ("34600000403", "Clase extra el sábado"): "template", ("ana", "Clase extra el sábado"): "text",
        ("34600000401", "Sin plantilla"): "text", ("ana", "Sin plantilla"): "text"}
    template = sent["34600000402", "Clase extra el sábado"].template
    assert template is not None
    assert (template.name, template.language) == ("charla_notice", "es")
    assert template.body_params == ["L34600000402", "Clase extra el sábado"]  # personalised per learner
    assert sent["34600000401", "Clase extra el sábado"].template is not None  # if the window closes meanwhile
    assert sent["ana", "Sin plantilla"].provider == "console"
    async with res.pool.connection() as conn:
        assert await recipients(conn, without) == {
            inside: ("queued", None), local: ("queued", None),
            outside: ("skipped", "window closed, no template"), never: ("skipped", "window closed, no template")}
        assert {state for state, _ in (await recipients(conn, with_template)).values()} == {"queued"}
        found = await broadcasts.summary(conn, without)
    assert (found.queued, found.skipped, found.reasons) == (2, 2, {"window closed, no template": 2})


async def test_templates_stop_at_the_daily_tier_until_the_24_hours_roll(clean: str, default_redis_server: str,
                                                                         redis_default: Redis) -> None:
    async with opened(clean, default_redis_server, CHARLA_BROADCAST_DAILY_LIMIT="3") as res:
        async with res.pool.connection() as conn:
            earlier = await learner(conn, "34600000500", last_inbound=CLOSED)
            await conn.execute(  # a practice template earlier today: already counted in the tier
                """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, status)
                   VALUES (%s, 'out', 'meta', %s, 'template', 'practice', 'delivered')""", (earlier, uuid.uuid4()))
            for n in range(1, 5):
                await learner(conn, f"3460000050{n}", last_inbound=CLOSED)
            for n in range(5, 8):
                await learner(conn, f"3460000050{n}")  # inside the window: free-form, not counted
            broadcast_id = await broadcasts.create(conn, Segment(), "Notice", template=NOTICE)
        assert await broadcast_dispatch.dispatch(res, 100) == 6  # the earlier one, 2 more templates, 3 free-form
        assert await broadcast_dispatch.dispatch(res, 100) == 0
        async with res.pool.connection() as conn:
            found = await broadcasts.summary(conn, broadcast_id)
            assert (found.status, found.pending, found.queued) == ("sending", 2, 6)
            assert await broadcast_dispatch.dispatch(res, 100, now=NOW + timedelta(hours=25)) == 2  # the tier rolled on
            assert (await broadcasts.summary(conn, broadcast_id)).status == "done"
    sent = await outbox(redis_default)
    assert sum(m.kind == "template" for m in sent) == 5
    assert len({m.to.wa_id for m in sent}) == 8


async def test_learners_blocked_or_unreachable_after_creation_are_skipped(res: Resources,
                                                                          redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        fine = await learner(conn, "34600000601")
        blocked = await learner(conn, "34600000602")
        gone = await learner(conn, "34600000603")
        broadcast_id = await broadcasts.create(conn, Segment(), "Notice")
        await redis_default.sadd(c.BLOCKED_KEY, "wa:34600000602")
        await conn.execute("UPDATE learners SET unreachable_at = now() WHERE id = %s", (gone,))
    assert await broadcast_dispatch.dispatch(res, 10) == 1
    async with res.pool.connection() as conn:
        assert await recipients(conn, broadcast_id) == {
            fine: ("queued", None), blocked: ("skipped", "blocked"), gone: ("skipped", "learner unreachable")}
    assert [m.to.wa_id for m in await outbox(redis_default)] == ["34600000601"]


async def test_delivery_counts_follow_the_messages_statuses(res: Resources, redis_default: Redis) -> None:
    statuses = ["queued", "sent", "delivered", "read", "played", "failed"]
    async with res.pool.connection() as conn:
        for n in range(len(statuses)):
            await learner(conn, f"3460000070{n}")
        await learner(conn, "34600000799", last_inbound=CLOSED)  # skipped: no template
        broadcast_id = await broadcasts.create(conn, Segment(), "Notice")
    assert await broadcast_dispatch.dispatch(res, 100) == len(statuses)
    async with res.pool.connection() as conn:
        for wa_id, status in zip((f"3460000070{n}" for n in range(len(statuses))), statuses, strict=True):
            await conn.execute("""UPDATE messages m SET status = %s FROM learners l
                                  WHERE l.id = m.learner_id AND l.wa_id = %s""", (status, wa_id))
        found = await broadcasts.summary(conn, broadcast_id)
        (listed,) = await broadcasts.listing(conn)
    assert (found.recipients, found.pending, found.queued, found.skipped) == (7, 0, 6, 1)
    assert (found.sent, found.delivered, found.read, found.failed) == (4, 3, 2, 1)  # cumulative: read was delivered
    assert (listed.id, listed.sent, listed.failed, listed.reasons) == (broadcast_id, 4, 1, {})
    assert "4 sent, 3 delivered, 2 read, 1 failed" in broadcasts.render(found)


async def test_cancel_stops_pending_and_withdraws_unsent(res: Resources, redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        for n in range(5):
            await learner(conn, f"3460000080{n}")
        broadcast_id = await broadcasts.create(conn, Segment(), "Notice")
        assert await broadcast_dispatch.dispatch(res, 2) == 2
        assert await broadcasts.cancel(conn, broadcast_id)
        assert not await broadcasts.cancel(conn, broadcast_id)
        assert not await broadcasts.cancel(conn, 10**9)
        assert await broadcast_dispatch.dispatch(res, 10) == 0
        found = await broadcasts.summary(conn, broadcast_id)
        with pytest.raises(broadcasts.UnknownBroadcast):
            await broadcasts.summary(conn, 10**9)
    assert (found.status, found.pending, found.queued, found.skipped, found.failed) == ("cancelled", 0, 2, 3, 2)
    assert found.reasons == {"cancelled": 3}


async def test_a_dispatcher_that_died_before_publishing_is_made_good(res: Resources, redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        for n in range(3):
            await learner(conn, f"3460000090{n}")
        await broadcasts.create(conn, Segment(), "Notice")
    assert await broadcast_dispatch.dispatch(res, 10) == 3
    first = await outbox(redis_default)
    await redis_default.delete(c.STREAM_OUTBOX, *[c.DEDUPE_KEY.format(key=f"outbox:{m.outbound_id}") for m in first])
    assert await broadcast_dispatch.republish(res) == 0  # too recent: its dispatcher may still be publishing
    assert await broadcast_dispatch.republish(res, now=datetime.now(UTC) + timedelta(minutes=1)) == 3
    again = await outbox(redis_default)
    assert sorted(m.outbound_id for m in again) == sorted(m.outbound_id for m in first)
    await broadcast_dispatch.republish(res, now=datetime.now(UTC) + timedelta(minutes=1))
    assert len(await outbox(redis_default)) == 3  # the dedupe key keeps a second publish out


async def test_sent_through_the_running_stack(clean: str, default_redis_server: str, redis_default: Redis) -> None:
    async with running_stack(clean, default_redis_server, CHARLA_SCHEDULER_TICK_S="0.1") as stack:
        for n, wa_id in enumerate(("34600000951", "34600000952")):
            assert (await stack.post(text_webhook(wa_id, f"wamid.bc{n}", "Hola"))).status_code == 200
        await stack.fake.wait_for(2, seconds=20)  # both answered: they are inside the window
        async with stack.res.pool.connection() as conn:
            await learner(conn, "34600000953", last_inbound=CLOSED)
            broadcast_id = await broadcasts.create(conn, Segment(), "¡Nuevo curso!", template=NOTICE)
        await stack.fake.wait_for(5, seconds=20)
        notices = stack.fake.sent[2:]
        assert sorted((m["to"], m["type"]) for m in notices) == [
            ("34600000951", "text"), ("34600000952", "text"), ("34600000953", "template")]
        assert {m["text"]["body"] for m in notices if m["type"] == "text"} == {"¡Nuevo curso!"}
        (template,) = [m["template"] for m in notices if m["type"] == "template"]
        assert template["name"] == "charla_notice"
        delivered = stack.fake.ids[2]
        value = {"statuses": [{"id": delivered, "status": "delivered", "timestamp": str(int(time.time())),
                               "recipient_id": notices[0]["to"]}]}
        body = json.dumps({"entry": [{"changes": [{"field": "messages", "value": value}]}]}).encode()
        assert (await stack.post(body)).status_code == 200

        async def counted() -> bool:
            async with stack.res.pool.connection() as conn:
                found = await broadcasts.summary(conn, broadcast_id)
            return (found.status, found.sent, found.delivered) == ("done", 3, 1)

        await eventually(counted, 20, "3 sent, 1 delivered")


runner = CliRunner()


def _sql(db: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(db, autocommit=True) as conn:
        cur = conn.execute(query.encode(), params)
        return list(cur.fetchall()) if cur.description else []


def test_the_cli_sends_lists_shows_and_cancels(db: str, default_redis_server: str) -> None:
    _sql(db, "TRUNCATE broadcasts CASCADE")
    for wa_id, language in (("34600001001", "es"), ("34600001002", "es"), ("33600001003", "fr")):
        (learner_id,) = _sql(db, "INSERT INTO learners (wa_id, last_inbound_at) VALUES (%s, now()) RETURNING id",
                             (wa_id,))[0]
        _sql(db, "INSERT INTO profiles (learner_id, data) VALUES (%s, %s)",
             (learner_id, json.dumps({"target_language": language, "level": "B1"})))
    env = {"DATABASE_URL": db, "REDIS_URL": default_redis_server}
    refused = runner.invoke(app, ["broadcast", "send", "Hola", "--language", "es"], env=env, input="n\n")
    assert refused.exit_code == 1
    assert "2 learner(s) match: language es" in refused.output
    assert _sql(db, "SELECT count(*) FROM broadcasts") == [(0,)]
    bad = runner.invoke(app, ["broadcast", "send", "Hola", "--level", "Z9", "--yes"], env=env)
    assert (bad.exit_code, "A1, A2" in bad.output) == (1, True)
    nobody = runner.invoke(app, ["broadcast", "send", "Hola", "--language", "de", "--yes"], env=env)
    assert (nobody.exit_code, "nothing was queued" in nobody.output) == (1, True)
    sent = runner.invoke(app, ["broadcast", "send", "Hola", "--language", "es", "--free", "--template", "notice",
                               "--param", "{name}", "--yes"], env=env)
    assert sent.exit_code == 0, sent.output
    ((broadcast_id, template),) = _sql(db, "SELECT id, template FROM broadcasts")
    assert f"broadcast {broadcast_id} queued" in sent.output
    assert (template["name"], template["language"], template["body_params"]) == ("notice", "en", ["{name}"])
    listed = runner.invoke(app, ["broadcast", "list"], env=env)
    assert listed.exit_code == 0
    assert "sending" in listed.output
    assert "Hola" in listed.output
    shown = runner.invoke(app, ["broadcast", "show", str(broadcast_id)], env=env)
    assert "segment: language es, free · template: notice" in shown.output
    assert "recipients: 2 (2 pending, 0 queued, 0 skipped)" in shown.output
    assert runner.invoke(app, ["broadcast", "cancel", str(broadcast_id)], env=env).exit_code == 0
    assert runner.invoke(app, ["broadcast", "cancel", str(broadcast_id)], env=env).exit_code == 1
    missing = runner.invoke(app, ["broadcast", "show", "999999"], env=env)
    assert (missing.exit_code, "no broadcast 999999" in missing.output) == (1, True)
