"""Human takeover: an operator (a human tutor) holds a learner's conversation and replies in person; the AI
stays quiet for that learner until the conversation is handed back.

Who holds whom lives in one Redis hash (constants.TAKEOVER_KEY), so the conversation agent's check costs one
HGET per turn. While a learner is held, their messages are still recorded (status "held": the operator's
to answer, never answered later by the AI), read, announced on constants.TAKEOVER_CHANNEL for a live
dashboard, and cost the learner nothing; an operator's reply is recorded and handed to the sender like any
other message. The learner's own data, billing and reminder commands keep working while held (see
agents/conversation.py).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.events import Identity, InboundMessage, OutboundMessage, Provider
from charla.core.redis_client import text
from charla.core.runtime import Resources
from charla.ops import audit
from charla.store import session
from charla.store.messages import Conn
from charla.store.session import Said

# Status of an inbound message left to the operator: not "received", so the AI never answers it in a burst.
HELD = "held"


@dataclass(frozen=True)
class Line:
    """One message of a conversation as an operator reads it."""

    direction: str  # "in" (the learner) or "out" (Charla or an operator)
    kind: str
    body: str | None
    status: str
    created_at: datetime
    operator: str | None  # who wrote an outbound message by hand; None for the AI and the learner


async def take(redis: Redis, learner_id: uuid.UUID, operator: str) -> None:
    """`operator` holds the learner from now on (taking over from another operator is allowed)."""
    await redis.hset(c.TAKEOVER_KEY, str(learner_id), json.dumps({"operator": operator, "at": time.time()}))


async def release(redis: Redis, learner_id: uuid.UUID) -> bool:
    """Hand the learner back to the AI; False when nobody held them."""
    return bool(await redis.hdel(c.TAKEOVER_KEY, str(learner_id)))


async def holder(redis: Redis, learner_id: uuid.UUID) -> str | None:
    """The operator holding the learner, or None when the AI answers (one round trip)."""
    raw = await redis.hget(c.TAKEOVER_KEY, str(learner_id))
    return None if raw is None else _operator(raw)


async def held(redis: Redis) -> dict[uuid.UUID, str]:
    """Every held learner and who holds them."""
    found: dict[Any, Any] = await redis.hgetall(c.TAKEOVER_KEY)
    return {uuid.UUID(text(key)): _operator(raw) for key, raw in found.items()}


async def hold_waiting(conn: Conn, learner_id: uuid.UUID, before: int | None = None) -> None:
    """Leave the learner's unanswered messages (those older than message `before`, if given) to the
    operator; a deferred AI turn is dropped with them."""
    await conn.execute("UPDATE messages SET status = %s, updated_at = now() WHERE learner_id = %s "
                       "AND direction = 'in' AND status = 'received' AND (%s::bigint IS NULL OR id < %s)",
                       (HELD, learner_id, before, before))
    await conn.execute("DELETE FROM pending_turns WHERE learner_id = %s", (learner_id,))


async def announce(redis: Redis, learner_id: uuid.UUID, event: InboundMessage, operator: str) -> None:
    """Tell live dashboards a held learner wrote (pub/sub: nobody listening is fine)."""
    note = {"learner_id": str(learner_id), "text": event.text, "at": event.at.isoformat(), "kind": event.kind,
            "message_id": event.message_id, "operator": operator}
    await redis.publish(c.TAKEOVER_CHANNEL, json.dumps(note, ensure_ascii=False))


async def reply(res: Resources, learner_id: uuid.UUID, text: str, operator: str) -> str:
    """Send `text` to the learner as `operator`: recorded, then handed to the sender (which handles the
    24-hour window); returns the outbound id. Raises LookupError for an unknown learner."""
    outbound_id = uuid.uuid4()
    async with res.pool.connection() as conn, conn.transaction():
        identity = await _identity(conn, learner_id)
        provider, via = await _channel(conn, learner_id, identity)
        await conn.execute(
            """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
               VALUES (%s, 'out', %s, %s, 'text', %s, %s, 'queued')""",
            (learner_id, provider, outbound_id, text, Jsonb({"operator": operator})))
        await audit.record(conn, operator, "reply", str(learner_id), f"{len(text)} characters")
    message = OutboundMessage(id=f"out-{outbound_id}", learner=identity.key(), outbound_id=str(outbound_id),
                              provider=provider, to=identity, text=text, via=via)
    await res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{outbound_id}")
    await remember(res, identity.key(), Said(role="assistant", text=text))
    return str(outbound_id)


async def remember(res: Resources, learner: str, said: Said) -> None:
    """Add a line of the held conversation to the learner's session, so the AI knows it once handed back."""
    sess = await session.load(res.redis, learner)
    sess.add(said, res.settings.session_messages)
    sess.awaiting, sess.offered = None, []  # a person is talking now: older questions and choices lapse
    await session.save(res.redis, learner, sess, res.settings.session_ttl_s)


async def conversation(conn: Conn, learner_id: uuid.UUID, limit: int = 50) -> list[Line]:
    """The learner's last `limit` messages in and out, oldest first."""
    rows = await (await conn.execute(
        """SELECT direction, kind, body, status, created_at, payload->>'operator' FROM messages
           WHERE learner_id = %s ORDER BY id DESC LIMIT %s""", (learner_id, limit))).fetchall()
    return [Line(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), str(r[3]), r[4],  # type: ignore[arg-type]
                 None if r[5] is None else str(r[5])) for r in reversed(rows)]


async def _identity(conn: Conn, learner_id: uuid.UUID) -> Identity:
    row = await (await conn.execute(
        "SELECT wa_id, wa_user_id, twilio_id, console_id, display_name FROM learners WHERE id = %s",
        (learner_id,))).fetchone()
    if row is None:
        raise LookupError(f"no learner {learner_id}")
    wa_id, user_id, twilio, console, name = (None if v is None else str(v) for v in row)
    return Identity(wa_id=wa_id, user_id=user_id, twilio=twilio, console=console, name=name)


async def _channel(conn: Conn, learner_id: uuid.UUID, identity: Identity) -> tuple[Provider, str | None]:
    """The provider the learner last wrote through and our number they wrote to (Twilio sends from it);
    without any message, the provider their identity belongs to."""
    row = await (await conn.execute(
        """SELECT provider, payload->>'to' FROM messages WHERE learner_id = %s AND direction = 'in'
           ORDER BY id DESC LIMIT 1""", (learner_id,))).fetchone()
    if row is not None:
        provider: Provider = "twilio" if row[0] == "twilio" else "console" if row[0] == "console" else "meta"
        return provider, None if row[1] is None else str(row[1])
    if identity.wa_id or identity.user_id:
        return "meta", None
    return ("twilio" if identity.twilio else "console"), None


def _operator(raw: bytes | str) -> str:
    return str(json.loads(raw).get("operator") or "operator")
