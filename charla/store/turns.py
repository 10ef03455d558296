"""Tutoring turns in PostgreSQL: which messages still await an answer, the record of each answered turn
(provider, tokens, cost, corrections), and turns deferred while every provider is down."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from charla.core.events import InboundMessage, TurnEvent
from charla.store.activities import Active
from charla.store.messages import Conn
from charla.store.profile import Profile


@dataclass(frozen=True)
class Waiting:
    """An inbound message not answered yet."""

    id: int
    message_id: str
    kind: str
    text: str | None
    payload: dict[str, object]


@dataclass(frozen=True)
class Usage:
    provider: str
    model: str = ""
    route: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    llm_ms: int = 0
    demo: bool = False


async def inbound_status(conn: Conn, inbound_id: int) -> str:
    row = await (await conn.execute("SELECT status FROM messages WHERE id = %s", (inbound_id,))).fetchone()
    return str(row[0]) if row else "missing"


# An unanswered message of the last 24 hours (messages aliased `m`).
_WAITING = b"m.direction = 'in' AND m.status = 'received' AND m.created_at > now() - interval '24 hours'"


async def waiting(conn: Conn, learner_id: uuid.UUID) -> list[Waiting]:
    """This learner's unanswered messages of the last 24 hours, oldest first (a burst answered together)."""
    rows = await (await conn.execute(
        b"SELECT id, provider_message_id, kind, body, payload FROM messages m WHERE learner_id = %s AND "
        + _WAITING + b" ORDER BY id", (learner_id,))).fetchall()
    return [_waiting(r) for r in rows]


def _waiting(r: Sequence[Any]) -> Waiting:
    return Waiting(int(str(r[0])), str(r[1]), str(r[2]), None if r[3] is None else str(r[3]),
                   r[4] if isinstance(r[4], dict) else {})


async def opening(conn: Conn, learner_id: uuid.UUID) -> tuple[list[Waiting], Profile, Active | None]:
    """What a turn starts from, in one round trip: `waiting`, the learner's profile and open activity."""
    rows = await (await conn.execute(
        b"SELECT m.id, m.provider_message_id, m.kind, m.body, m.payload, p.data, a.kind, a.state, a.started_at, "
        b"a.updated_at FROM (SELECT %s::uuid AS id) l LEFT JOIN profiles p ON p.learner_id = l.id "
        b"LEFT JOIN activities a ON a.learner_id = l.id LEFT JOIN messages m ON m.learner_id = l.id AND "
        + _WAITING + b" ORDER BY m.id", (learner_id,))).fetchall()
    first: Sequence[Any] = rows[0]  # (one row at least: the learner's, with no message when none waits)
    stored = Profile.model_validate(first[5]) if first[5] is not None else Profile()
    active = Active(str(first[6]), first[7], first[8], first[9]) if first[6] is not None else None
    return [_waiting(r) for r in rows if r[0] is not None], stored, active


async def mark_noted(conn: Conn, inbound_id: int) -> None:
    """A message that needs no reply (a reaction)."""
    await conn.execute("UPDATE messages SET status = 'noted', updated_at = now() WHERE id = %s AND status = 'received'",
                       (inbound_id,))


async def record(conn: Conn, learner_id: uuid.UUID, reply_to: int, answered: list[int], usage: Usage,
                 total_ms: int, corrections: list[dict[str, object]], vocabulary: list[dict[str, object]],
                 voice_example: bool) -> int:
    """Record an answered turn: the answered messages are marked, a deferral is cleared (one transaction
    with the reply)."""
    row = await (await conn.execute(  # one statement (the three writes touch different tables)
        """WITH answered AS (UPDATE messages SET status = 'answered', updated_at = now() WHERE id = ANY(%(answered)s)),
                undeferred AS (DELETE FROM pending_turns WHERE learner_id = %(learner)s)
           INSERT INTO turns (learner_id, reply_to, inbound_ids, provider, model, route, input_tokens, output_tokens,
                              cost_usd, llm_ms, total_ms, corrections, vocabulary, voice_example, demo)
           VALUES (%(learner)s, %(reply_to)s, %(answered)s, %(provider)s, %(model)s, %(route)s, %(input)s, %(output)s,
                   %(cost)s, %(llm_ms)s, %(total_ms)s, %(corrections)s, %(vocabulary)s, %(voice)s, %(demo)s)
           RETURNING id""",
        {"learner": learner_id, "reply_to": reply_to, "answered": answered, "provider": usage.provider,
         "model": usage.model, "route": usage.route, "input": usage.input_tokens, "output": usage.output_tokens,
         "cost": Decimal(str(round(usage.cost_usd, 6))), "llm_ms": usage.llm_ms, "total_ms": total_ms,
         "corrections": Jsonb(corrections), "vocabulary": Jsonb(vocabulary), "voice": voice_example,
         "demo": usage.demo})).fetchone()
    assert row is not None
    return int(str(row[0]))


async def event_of(conn: Conn, reply_to: int, learner_key: str) -> TurnEvent | None:
    """The turn event of the turn that answered `reply_to` (re-published after a crash; deduplicated)."""
    row = await (await conn.execute(
        """SELECT t.id, t.learner_id, t.provider, t.model, t.route, t.input_tokens, t.output_tokens, t.cost_usd,
                  t.total_ms, t.corrections, t.vocabulary, t.voice_example,
                  (SELECT body FROM messages r WHERE r.reply_to = t.reply_to AND r.reply_part = 'reply'),
                  (SELECT array_agg(provider_message_id ORDER BY id) FROM messages WHERE id = ANY(t.inbound_ids)),
                  (SELECT string_agg(coalesce(body, ''), E'\n' ORDER BY id) FROM messages
                   WHERE id = ANY(t.inbound_ids)),
                  coalesce(p.data->>'target_language', ''), coalesce(p.data->>'native_language', '')
           FROM turns t LEFT JOIN profiles p ON p.learner_id = t.learner_id WHERE t.reply_to = %s""",
        (reply_to,))).fetchone()
    if row is None:
        return None
    return TurnEvent(learner=learner_key, turn_id=int(str(row[0])), learner_id=str(row[1]), llm=str(row[2]),
                     model=str(row[3]), route=str(row[4]), input_tokens=int(str(row[5])),
                     output_tokens=int(str(row[6])), cost_usd=float(str(row[7])), total_ms=int(str(row[8])),
                     corrections=list(row[9] or []), vocabulary=list(row[10] or []),  # type: ignore[call-overload]
                     voice_example=bool(row[11]), reply=str(row[12] or ""), message_ids=list(row[13] or []),  # type: ignore[call-overload]
                     text=str(row[14] or ""), target_language=str(row[15]), native_language=str(row[16]))


async def defer(conn: Conn, learner_id: uuid.UUID, event: InboundMessage, error: str, base_s: float) -> int:
    """Remember that this learner's turn must be retried; returns how many times it has failed (1: first)."""
    row = await (await conn.execute(
        """INSERT INTO pending_turns (learner_id, event, next_attempt_at, last_error)
           VALUES (%s, %s, now() + %s, %s)
           ON CONFLICT (learner_id) DO UPDATE SET
               event = EXCLUDED.event, attempts = pending_turns.attempts + 1, last_error = EXCLUDED.last_error,
               next_attempt_at = now() + %s * least(power(2, pending_turns.attempts), 40)
           RETURNING attempts""",
        (learner_id, Jsonb(event.model_dump(mode="json")), timedelta(seconds=base_s), error[:2000],
         timedelta(seconds=base_s)))).fetchone()
    assert row is not None
    return int(str(row[0]))


async def due(conn: Conn, lease_s: float, limit: int = 100) -> list[InboundMessage]:
    """Deferred turns whose retry time has come; each is leased for `lease_s` so one replica re-publishes it."""
    rows = await (await conn.execute(
        """UPDATE pending_turns SET next_attempt_at = now() + %s
           WHERE learner_id IN (SELECT learner_id FROM pending_turns WHERE next_attempt_at <= now()
                                ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)
           RETURNING event, attempts""", (timedelta(seconds=lease_s), limit))).fetchall()
    return [InboundMessage.model_validate(r[0]) for r in rows]


async def provider_share(conn: Conn, hours: int = 24) -> dict[str, dict[str, float]]:
    """Turns, tokens and cost per provider over the last `hours` (model turns only)."""
    rows = await (await conn.execute(
        """SELECT provider, count(*), sum(input_tokens + output_tokens), sum(cost_usd) FROM turns
           WHERE created_at > now() - %s AND provider NOT IN ('command', 'canned') GROUP BY provider""",
        (timedelta(hours=hours),))).fetchall()
    total = sum(int(str(r[1])) for r in rows) or 1
    return {str(r[0]): {"turns": int(str(r[1])), "share": int(str(r[1])) / total, "tokens": int(str(r[2])),
                        "cost_usd": float(str(r[3]))} for r in rows}


@dataclass(frozen=True)
class Past:
    """An answered turn as the memory agent reads it back."""

    turn_id: int
    text: str
    reply: str
    message_ids: list[str]


async def since(conn: Conn, learner_id: uuid.UUID, after: int, through: int, limit: int = 50) -> list[Past]:
    """The learner's turns with ids in (after, through], oldest first (at most the `limit` newest)."""
    rows = await (await conn.execute(
        """SELECT t.id,
                  (SELECT string_agg(coalesce(body, ''), E'\\n' ORDER BY id) FROM messages
                   WHERE id = ANY(t.inbound_ids)),
                  (SELECT body FROM messages r WHERE r.reply_to = t.reply_to AND r.reply_part = 'reply'),
                  (SELECT array_agg(provider_message_id ORDER BY id) FROM messages WHERE id = ANY(t.inbound_ids))
           FROM turns t WHERE t.learner_id = %s AND t.id > %s AND t.id <= %s
           ORDER BY t.id DESC LIMIT %s""", (learner_id, after, through, limit))).fetchall()
    return [Past(int(str(r[0])), str(r[1] or ""), str(r[2] or ""), list(r[3] or []))  # type: ignore[call-overload]
            for r in reversed(rows)]


async def messages_since(conn: Conn, learner_id: uuid.UUID, after: int, through: int) -> int:
    """How many learner messages the turns in (after, through] answered."""
    row = await (await conn.execute(
        "SELECT coalesce(sum(cardinality(inbound_ids)), 0) FROM turns WHERE learner_id = %s AND id > %s AND id <= %s",
        (learner_id, after, through))).fetchone()
    return int(str(row[0])) if row else 0
