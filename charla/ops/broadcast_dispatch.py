"""Sending a broadcast: recipients claimed and queued on the outbox, paced within WhatsApp's limits.

The scheduler agent runs `dispatch` through a `Pacer` at CHARLA_BROADCAST_RATE messages per second: each
recipient becomes a `messages` row and an OutboundMessage on the outbox exactly like a practice prompt (a
deterministic outbound id recorded before publishing, published with a dedupe key), free-form inside the
24-hour window, the broadcast's template outside it. Template sends open business-initiated conversations,
which WhatsApp caps per rolling 24 hours (the messaging tier): they stop at CHARLA_BROADCAST_DAILY_LIMIT
distinct learners and the rest wait for the window to roll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from redis.asyncio import Redis

from charla.channels.registry import traits
from charla.core import constants as c
from charla.core import window
from charla.core.events import Identity, OutboundMessage, Template
from charla.core.runtime import Resources
from charla.store.messages import Conn

log = logging.getLogger(__name__)
REPUBLISH_AFTER = timedelta(seconds=30)  # a queued recipient still unsent this long after its batch: publish again
REPUBLISH_EVERY_S = 30.0
# One dispatcher at a time spends the daily template allowance; the others send only what needs none.
_DAILY_LOCK = 0x42524443  # "BRDC"


@dataclass
class Pending:
    """A claimed recipient with what composing its message needs."""

    broadcast_id: int
    learner_id: uuid.UUID
    outbound_id: uuid.UUID
    text: str
    template: dict[str, Any] | None
    wa_id: str | None
    wa_user_id: str | None
    twilio_id: str | None
    console_id: str | None
    display_name: str | None
    unreachable: bool
    opted_out: bool  # said STOP (or stopped marketing messages at WhatsApp): nothing proactive
    window_open: bool
    counted: bool  # already had a business-initiated message in the last 24 hours
    provider: str
    via: str | None
    kind: str | None = None  # how it was queued (republishing only)

    @property
    def identity(self) -> Identity:
        return Identity(wa_id=self.wa_id, user_id=self.wa_user_id, twilio=self.twilio_id, console=self.console_id,
                        name=self.display_name)


# What composing a recipient's message needs, for claimed and for republished recipients alike.
_RECIPIENT = sql.SQL("""
    SELECT r.broadcast_id, r.learner_id, r.outbound_id, b.text, b.template, l.wa_id, l.wa_user_id, l.twilio_id,
           l.console_id, l.display_name, l.unreachable_at IS NOT NULL AS unreachable,
           l.opted_out_at IS NOT NULL AS opted_out, f.window_open, f.counted,
           f.provider, ch.via, {kind} AS kind
    FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id JOIN learners l ON l.id = r.learner_id
    LEFT JOIN LATERAL (SELECT provider, payload->>'to' AS via FROM messages
                       WHERE learner_id = l.id AND direction = 'in' ORDER BY id DESC LIMIT 1) ch ON true
    CROSS JOIN LATERAL (SELECT
        {window_open} AS window_open,
        EXISTS (SELECT 1 FROM messages m WHERE m.learner_id = l.id AND m.direction = 'out'
                  AND (m.kind = 'template' OR m.payload ? 'sent_as_template')
                  AND m.created_at > %(now)s - interval '24 hours') AS counted,
        coalesce(ch.provider, CASE WHEN l.wa_id IS NOT NULL OR l.wa_user_id IS NOT NULL THEN 'meta'
                                   WHEN l.twilio_id IS NOT NULL THEN 'twilio' ELSE 'console' END) AS provider) f
    {join}""")
_WINDOW_OPEN = window.open_sql(sql.SQL("l.last_inbound_at"), sql.Placeholder("now"))

_CLAIM = _RECIPIENT.format(kind=sql.SQL("NULL::text"), window_open=_WINDOW_OPEN, join=sql.SQL("""
    WHERE r.state = 'pending' AND b.status = 'sending'
      AND (%(room)s OR b.template IS NULL OR f.window_open OR f.counted OR f.provider = 'console')
    ORDER BY r.broadcast_id, r.learner_id LIMIT %(limit)s FOR UPDATE OF r SKIP LOCKED"""))

_UNPUBLISHED = _RECIPIENT.format(kind=sql.SQL("m.kind"), window_open=_WINDOW_OPEN, join=sql.SQL("""
    JOIN messages m ON m.outbound_id = r.outbound_id
    WHERE r.state = 'queued' AND m.status = 'queued' AND r.queued_at < %(now)s - %(after)s
      AND r.queued_at > %(now)s - interval '1 hour'
    ORDER BY r.queued_at LIMIT %(limit)s"""))


async def dispatch(res: Resources, limit: int, *, now: datetime | None = None) -> int:
    """Queue up to `limit` pending recipients on the outbox; returns how many were queued.

    Claimed with `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers (scheduler replicas) never take the same
    recipient. Inside the learner's 24-hour window the text goes free-form; outside it the broadcast's template
    (personalised), else the recipient is skipped. Template sends stop at CHARLA_BROADCAST_DAILY_LIMIT
    distinct learners per rolling 24 hours; those recipients stay pending. A broadcast with nobody pending
    left is marked done."""
    now = now or datetime.now(UTC)
    queued: list[OutboundMessage] = []
    async with res.pool.connection() as conn:
        if limit > 0:
            async with conn.transaction():
                room = await _template_room(conn, res.settings.broadcast_daily_limit, now)
                claimed = await _fetch(conn, _CLAIM, {"room": room > 0, "limit": limit, "now": now})
                blocked = await _blocked(res.redis, claimed)
                for pending in claimed:
                    message, room = await _compose(conn, pending, pending.identity.key() in blocked, room, now)
                    if message is not None:
                        queued.append(message)
        await _mark_done(conn)
    for message in queued:
        await res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{message.outbound_id}")
    return len(queued)


async def republish(res: Resources, *, now: datetime | None = None, limit: int = 500) -> int:
    """Publish again recipients queued by a dispatcher that died before publishing (the outbox's dedupe key
    drops the ones that did go out); returns how many were handed to the bus."""
    now = now or datetime.now(UTC)
    async with res.pool.connection() as conn:
        found = await _fetch(conn, _UNPUBLISHED, {"now": now, "after": REPUBLISH_AFTER,
                                                  "limit": limit})
    for pending in found:
        message = _outbound(pending, "template" if pending.kind == "template" else "text")
        await res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{message.outbound_id}")
    return len(found)


async def _mark_done(conn: Conn) -> None:
    """Outside the claiming transaction: there, recipients other dispatchers are queueing still look pending."""
    await conn.execute(
        """UPDATE broadcasts b SET status = 'done' WHERE status = 'sending' AND NOT EXISTS (
             SELECT 1 FROM broadcast_recipients r WHERE r.broadcast_id = b.id AND r.state = 'pending')""")


async def _fetch(conn: Conn, query: sql.Composed, params: dict[str, Any]) -> list[Pending]:
    async with conn.cursor(row_factory=class_row(Pending)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _template_room(conn: Conn, daily_limit: int, now: datetime) -> int:
    """How many more learners may get a template now (0 while another dispatcher holds the allowance)."""
    locked = await (await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_DAILY_LOCK,))).fetchone()
    if not locked or not locked[0]:
        return 0
    row = await (await conn.execute(
        """SELECT count(DISTINCT learner_id) FROM messages WHERE direction = 'out'
             AND (kind = 'template' OR payload ? 'sent_as_template') AND created_at > %s - interval '24 hours'""",
        (now,))).fetchone()
    return max(0, daily_limit - (int(str(row[0])) if row else 0))


async def _blocked(redis: Redis, claimed: list[Pending]) -> set[str]:
    """The claimed learners an operator blocked since the broadcast was created."""
    keys = sorted({p.identity.key() for p in claimed})
    if not keys:
        return set()
    flags = await redis.smismember(c.BLOCKED_KEY, keys)
    return {key for key, flag in zip(keys, flags, strict=True) if flag}


async def _compose(conn: Conn, pending: Pending, blocked: bool, room: int,
                   now: datetime) -> tuple[OutboundMessage | None, int]:
    """Queue, skip or leave pending one recipient; returns its message (if queued) and the room left."""
    if blocked or pending.unreachable or pending.opted_out:
        reason = "blocked" if blocked else "learner unreachable" if pending.unreachable else "learner opted out"
        await _skip(conn, pending, reason)
        return None, room
    if pending.window_open or not traits(pending.provider).window:
        return await _queue(conn, pending, "text", now), room
    if pending.template is None:
        await _skip(conn, pending, "window closed, no template")
        return None, room
    if pending.counted:
        return await _queue(conn, pending, "template", now), room
    if room <= 0:
        return None, room  # the daily tier is spent: it stays pending until the 24 hours roll on
    return await _queue(conn, pending, "template", now), room - 1


async def _queue(conn: Conn, pending: Pending, kind: Literal["text", "template"], now: datetime) -> OutboundMessage:
    await conn.execute(
        """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
           VALUES (%s, 'out', %s, %s, %s, %s, %s, 'queued') ON CONFLICT DO NOTHING""",
        (pending.learner_id, pending.provider, pending.outbound_id, kind, pending.text,
         Jsonb({"broadcast": pending.broadcast_id})))
    await conn.execute(
        """UPDATE broadcast_recipients SET state = 'queued', queued_at = %s
           WHERE broadcast_id = %s AND learner_id = %s""", (now, pending.broadcast_id, pending.learner_id))
    return _outbound(pending, kind)


async def _skip(conn: Conn, pending: Pending, reason: str) -> None:
    await conn.execute(
        """UPDATE broadcast_recipients SET state = 'skipped', reason = %s
           WHERE broadcast_id = %s AND learner_id = %s""",
        (reason, pending.broadcast_id, pending.learner_id))


def _outbound(pending: Pending, kind: Literal["text", "template"]) -> OutboundMessage:
    identity = pending.identity
    template = _personal(pending.template, pending.display_name, pending.text) if pending.template else None
    return OutboundMessage(id=f"out-{pending.outbound_id}", learner=identity.key(),
                           outbound_id=str(pending.outbound_id), provider=pending.provider,
                           to=identity, text=pending.text, via=pending.via, kind=kind, template=template)


def _personal(stored: dict[str, Any], name: str | None, text: str) -> Template:
    """The template with `{name}` (the learner's display name) and `{text}` (the notice) filled in its
    parameters. Also carried by free-form sends: the sender uses it if the window closes before they go out."""
    template = Template.model_validate(stored)
    params = [p.replace("{name}", name or "").replace("{text}", text) for p in template.body_params]
    return template.model_copy(update={"body_params": params})


Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up (aiolimiter would do this; it is not a dependency)."""

    rate: float
    burst: float
    clock: Clock = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens, self.stamp = self.burst, self.clock()

    def available(self) -> int:
        """Whole tokens there are now."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return int(self.tokens + 1e-9)  # 0.4 s at 5/s is 2 tokens, whatever the float rounding

    def spend(self, count: int) -> None:
        self.tokens -= count

    def wait_s(self, count: float) -> float:
        """Seconds until `count` tokens are there."""
        return max(0.0, (min(count, self.burst) - self.tokens) / self.rate)


@dataclass
class Pacer:
    """Runs `dispatch` at CHARLA_BROADCAST_RATE messages per second: the scheduler agent's broadcast loop.
    The rate is per scheduler process; with several replicas, divide it among them."""

    res: Resources
    clock: Clock = time.monotonic
    bucket: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        rate = self.res.settings.broadcast_rate
        self.bucket = TokenBucket(rate, max(1.0, rate), self.clock)  # a burst of one second's worth

    async def step(self) -> int:
        """Queue as many pending recipients as the bucket allows now; returns how many were queued."""
        allowed = self.bucket.available()
        queued = await dispatch(self.res, allowed)
        self.bucket.spend(queued)
        return queued

    async def run(self, stop: asyncio.Event) -> None:
        republished = -REPUBLISH_EVERY_S
        while not stop.is_set():
            wait = self.res.settings.scheduler_tick_s
            try:
                if await self.step():  # more may be pending: come back when a full batch is allowed
                    wait = self.bucket.wait_s(self.bucket.burst)
                if self.clock() - republished >= REPUBLISH_EVERY_S:
                    republished = self.clock()
                    await republish(self.res)
            except Exception:
                log.exception("broadcast dispatch failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
