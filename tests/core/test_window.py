"""One 24-hour window: the sender, the scheduler and broadcasts decide exactly as `charla.core.window.is_open`, for
learners whose last message is just inside, at, and just past the boundary (real PostgreSQL, real SQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from redis.asyncio import Redis

from agents import sender
from agents.scheduler import PracticeScheduler
from charla.channels.registry import open_channels
from charla.core import constants as c
from charla.core import window
from charla.core.events import Identity, OutboundMessage, Template, decode_event
from charla.core.runtime import Resources, open_resources
from charla.ops import broadcast_dispatch, broadcasts
from charla.ops.broadcasts import Segment
from charla.store import learners, profile
from charla.store.messages import Conn
from tests.support.helpers import entries, make_settings
from tests.support.servers import FakeGraph, serve_fake_graph

NOW = datetime(2030, 6, 3, 17, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
# 23 h 40 min … 24 h 10 min every 5 minutes, and a second either side of the boundary and on it.
AGES = sorted({timedelta(hours=23, minutes=40) + timedelta(minutes=m) for m in range(0, 31, 5)}
              | {window.USABLE - SECOND, window.USABLE, window.USABLE + SECOND})
# The sender reads the database's clock, which moves on while the test runs: no point just inside the boundary.
SENDER_AGES = sorted({a for a in AGES if a != window.USABLE - SECOND} | {window.USABLE - timedelta(seconds=30)})


def wa_id(n: int) -> str:
    return f"3460000{n:04d}"


@pytest.fixture
async def res(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Resources]:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("TRUNCATE broadcasts CASCADE")
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, CHARLA_PRACTICE_TEMPLATE="practice_nudge",
                             CHARLA_BROADCAST_DAILY_LIMIT="0")
    async with open_resources(settings, pool_size=4) as opened:
        yield opened


async def learner(conn: Conn, n: int, last_inbound: datetime) -> uuid.UUID:
    learner_id = await learners.upsert(conn, Identity(wa_id=wa_id(n), name=f"L{n}"))
    await conn.execute("UPDATE learners SET last_inbound_at = %s WHERE id = %s", (last_inbound, learner_id))
    await profile.update(conn, learner_id, lambda p: None)
    return learner_id


async def outbox_kinds(redis: Redis) -> dict[str, str]:
    found = [decode_event(f[b"e"]) for _, f in await entries(redis, c.STREAM_OUTBOX)]
    return {str(e.to.wa_id): e.kind for e in found if isinstance(e, OutboundMessage)}


def expected(ages: list[timedelta] = AGES) -> dict[str, bool]:
    return {wa_id(n): window.is_open(NOW - age, NOW) for n, age in enumerate(ages)}


def test_the_rule() -> None:
    assert window.LENGTH - window.MARGIN == window.USABLE
    assert window.remaining(NOW - window.USABLE, NOW) == timedelta(0)
    assert window.is_open(NOW - window.USABLE + SECOND, NOW)
    assert not window.is_open(NOW - window.USABLE, NOW)  # the boundary itself is closed
    assert not window.is_open(None, NOW)
    assert window.remaining(NOW - timedelta(hours=23), NOW) == timedelta(minutes=50)
    assert window.remaining(NOW - timedelta(hours=30), NOW) == window.remaining(None, NOW) == timedelta(0)
    assert window.closes_at(NOW) == NOW + window.USABLE
    assert {True, False} == set(expected().values())


async def test_the_scheduler_decides_as_the_window(res: Resources, redis_default: Redis) -> None:
    async with res.pool.connection() as conn:
        for n, age in enumerate(AGES):
            learner_id = await learner(conn, n, NOW - age)
            await conn.execute("""INSERT INTO practice_prompts (learner_id, kind, slot_at, status)
                                  VALUES (%s, 'practice', %s, 'due')""", (learner_id, NOW))
    assert await PracticeScheduler(res).dispatch(NOW, unpublished=False) == len(AGES)
    kinds = await outbox_kinds(redis_default)
    assert {to: kind == "text" for to, kind in kinds.items()} == expected()


async def test_the_summary_goes_out_only_while_the_window_is_open(res: Resources) -> None:
    async with res.pool.connection() as conn:
        for n, age in enumerate(AGES):
            learner_id = await learner(conn, n, NOW - age)
            row = await (await conn.execute(
                """INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body, status)
                   VALUES (%s, 'in', 'meta', %s, 'text', 'Estoy agotado', 'answered') RETURNING id""",
                (learner_id, f"wamid.w{n}"))).fetchone()
            assert row is not None
            await conn.execute("""INSERT INTO turns (learner_id, reply_to, inbound_ids, provider, vocabulary,
                                                     created_at)
                                  VALUES (%s, %s, %s, 'groq', '[{"word": "agotado"}]', %s)""",
                               (learner_id, row[0], [row[0]], NOW - age))
        await PracticeScheduler(res).summaries(NOW)
        rows = await (await conn.execute(
            """SELECT l.wa_id FROM practice_prompts p JOIN learners l ON l.id = p.learner_id
               WHERE p.kind = 'summary'""")).fetchall()
    assert {str(r[0]) for r in rows} == {to for to, is_open in expected().items() if is_open}


async def test_broadcasts_decide_as_the_window(res: Resources, redis_default: Redis) -> None:
    """With no template allowance left (daily limit 0), only learners inside the window get the broadcast."""
    async with res.pool.connection() as conn:
        for n, age in enumerate(AGES):
            await learner(conn, n, NOW - age)
        await broadcasts.create(conn, Segment(), "Clase extra", template=Template(name="notice", language="es"))
    queued = await broadcast_dispatch.dispatch(res, 100, now=NOW)
    kinds = await outbox_kinds(redis_default)
    assert queued == sum(expected().values())
    assert {to: to in kinds for to in expected()} == expected()
    assert set(kinds.values()) == {"text"}


@pytest.fixture
async def graph(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[tuple[Resources,
                                                                                                   FakeGraph]]:
    async with serve_fake_graph() as (fake, url):
        settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, WHATSAPP_ACCESS_TOKEN="tok",
                                 WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_API_BASE_URL=url,
                                 WHATSAPP_REENGAGE_TEMPLATE="reengage")
        async with open_resources(settings, pool_size=4) as opened:
            yield opened, fake


async def test_the_sender_decides_as_the_window(graph: tuple[Resources, FakeGraph]) -> None:
    """The sender reads the window by the database's clock: ages are set against it, so the sends that follow a
    moment later see them older (never younger), by less than the 30 s between the boundary and the next point."""
    res, fake = graph
    channels = open_channels(res)
    async with res.pool.connection() as conn:
        row = await (await conn.execute("SELECT now()")).fetchone()
        assert row is not None
        now: datetime = row[0]
        events = []
        for n, age in enumerate(SENDER_AGES):
            learner_id = await learner(conn, n, now - age)
            to = Identity(wa_id=wa_id(n))
            event = OutboundMessage(outbound_id=str(uuid.uuid4()), learner=to.key(), provider="meta", to=to,
                                    text="¿Seguimos?")
            await conn.execute("""INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body,
                                                        status) VALUES (%s, 'out', 'meta', %s, 'text', %s, 'queued')""",
                               (learner_id, event.outbound_id, event.text))
            events.append(event)
    for event in events:
        await sender.send(res, channels, event)
    decided = {str(body["to"]): body["type"] == "text" for body in fake.sent}
    assert decided == {wa_id(n): window.is_open(now - age, now) for n, age in enumerate(SENDER_AGES)}
    assert decided == expected(SENDER_AGES)
