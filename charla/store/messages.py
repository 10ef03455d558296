"""The message log: inbound messages recorded once, replies recorded before they are sent."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from charla.core import window
from charla.core.events import Choice, InboundMessage

Conn = AsyncConnection[tuple[object, ...]]

# Outbound ids are derived from what they answer, so a re-run of the same turn produces the same id.
_OUTBOUND_NS = uuid.UUID("6f1c2a53-8d0e-4f43-9f5e-3c1d2b7a9e10")


@dataclass(frozen=True)
class Outbound:
    outbound_id: uuid.UUID
    body: str
    status: str
    choices: list[Choice] = field(default_factory=list)


def outbound_id_for(provider: str, provider_message_id: str, part: str) -> uuid.UUID:
    """The stable id of reply `part` to one inbound message."""
    return uuid.uuid5(_OUTBOUND_NS, f"{provider}:{provider_message_id}:{part}")


async def record_inbound(conn: Conn, learner_id: uuid.UUID, event: InboundMessage) -> int:
    """The log row of `event` (inserted the first time, found on every retry)."""
    row = await (await conn.execute(
        """INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body, payload,
                                 status)
           VALUES (%s, 'in', %s, %s, %s, %s, %s, 'received')
           ON CONFLICT (provider, provider_message_id) DO UPDATE SET updated_at = messages.updated_at
           RETURNING id""",
        (learner_id, event.provider, event.message_id, event.kind, event.text, Jsonb(event.payload)),
    )).fetchone()
    assert row is not None
    return int(str(row[0]))


async def replies(conn: Conn, inbound_id: int) -> dict[str, Outbound]:
    """The recorded replies to one inbound message, by part ("reply", "delay")."""
    rows = await (await conn.execute(
        "SELECT reply_part, outbound_id, body, status, payload FROM messages WHERE reply_to = %s",
        (inbound_id,))).fetchall()
    return {str(r[0]): Outbound(uuid.UUID(str(r[1])), str(r[2]), str(r[3]),
                                [Choice.model_validate(c) for c in (r[4] if isinstance(r[4], dict) else {})
                                 .get("choices", [])]) for r in rows}


async def offered(conn: Conn, learner_id: uuid.UUID, provider_message_id: str) -> list[str]:
    """The ids of the choices that Charla's message `provider_message_id` (any of its parts) offered to this
    learner; empty when it is not such a message."""
    rows = await (await conn.execute(
        """SELECT m.payload FROM messages m
           WHERE m.learner_id = %s AND m.direction = 'out'
             AND (m.provider_message_id = %s OR m.outbound_id IN (
                  SELECT outbound_id FROM outbound_parts WHERE provider_message_id = %s))""",
        (learner_id, provider_message_id, provider_message_id))).fetchall()
    return [str(choice.get("id")) for row in rows if isinstance(row[0], dict)
            for choice in row[0].get("choices", []) if isinstance(choice, dict)]


async def record_reply(conn: Conn, learner_id: uuid.UUID, provider: str, message_id: str, inbound_id: int,
                       body: str, part: str = "reply", *, answers: bool = True,
                       choices: Sequence[Choice] = (), kind: str | None = None) -> Outbound:
    """Record reply `part` to inbound message `message_id` (unique per part); with `answers`, mark that
    message answered too (call inside one transaction)."""
    outbound_id = outbound_id_for(provider, message_id, part)
    payload = {"choices": [c.model_dump() for c in choices]} if choices else {}
    await conn.execute(
        """INSERT INTO messages (learner_id, direction, provider, outbound_id, reply_to, reply_part, kind, body,
                                 payload, status)
           VALUES (%s, 'out', %s, %s, %s, %s, %s, %s, %s, 'queued')""",
        (learner_id, provider, outbound_id, inbound_id, part, kind or ("choices" if choices else "text"), body,
         Jsonb(payload)))
    if answers:
        await conn.execute("UPDATE messages SET status = 'answered', updated_at = now() WHERE id = %s", (inbound_id,))
    return Outbound(outbound_id, body, "queued", list(choices))


@dataclass(frozen=True)
class SendState:
    status: str
    parts_sent: int  # parts of a split reply already accepted by the provider
    window_open: bool  # free-form allowed now (charla.core.window)
    unreachable: bool
    interrupted_s: float | None = None  # seconds since the send of part `parts_sent` began unrecorded (a crash)


_SEND_STATE = sql.SQL("""
    SELECT m.status, p.sent, {window_open}, l.unreachable_at IS NOT NULL,
           CASE WHEN m.sending_part = p.sent THEN extract(epoch FROM now() - m.sending_since) END
    FROM messages m JOIN learners l ON l.id = m.learner_id,
         LATERAL (SELECT count(*) AS sent FROM outbound_parts p WHERE p.outbound_id = m.outbound_id) p
    WHERE m.outbound_id = %s""").format(
    window_open=window.open_sql(sql.SQL("l.last_inbound_at"), sql.SQL("now()")))


async def send_state(conn: Conn, outbound_id: uuid.UUID) -> SendState | None:
    """What the sender needs to know about one outbound message now (the window by the database's clock)."""
    row = await (await conn.execute(_SEND_STATE, (outbound_id,))).fetchone()
    if row is None:
        return None
    return SendState(str(row[0]), int(str(row[1])), bool(row[2]), bool(row[3]),
                     None if row[4] is None else float(str(row[4])))


async def note_sending(conn: Conn, outbound_id: uuid.UUID, index: int | None) -> None:
    """Part `index` is about to be sent (None: the provider answered with an error, nothing went out)."""
    await conn.execute("UPDATE messages SET sending_part = %s, sending_since = now() WHERE outbound_id = %s",
                       (index, outbound_id))


async def unrecorded_status(conn: Conn, provider: str, outbound_id: uuid.UUID) -> str | None:
    """The provider id of a part of `outbound_id` that the provider reported on but the sender never
    recorded (it was killed in between), if any. Parts go out one at a time: there is at most one."""
    row = await (await conn.execute(
        """SELECT st.provider_message_id FROM message_statuses st
           WHERE st.outbound_id = %s AND st.provider = %s
             AND NOT EXISTS (SELECT 1 FROM outbound_parts p WHERE p.provider = st.provider
                                                              AND p.provider_message_id = st.provider_message_id)
           LIMIT 1""", (outbound_id, provider))).fetchone()
    return None if row is None else str(row[0])


async def record_part_sent(conn: Conn, provider: str, outbound_id: uuid.UUID, index: int,
                           provider_message_id: str) -> None:
    """Remember that part `index` went out (a redelivery resumes after it), then apply any status that
    arrived for it before this was recorded."""
    await conn.execute(
        """INSERT INTO outbound_parts (provider, provider_message_id, outbound_id, part) VALUES (%s, %s, %s, %s)
           ON CONFLICT DO NOTHING""", (provider, provider_message_id, outbound_id, index))
    await conn.execute(  # a provider id already on another row is not copied: never fail after a send
        """UPDATE messages SET provider_message_id = COALESCE(provider_message_id, %s), updated_at = now()
           WHERE outbound_id = %s AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.provider = %s
                                                                     AND o.provider_message_id = %s)""",
        (provider_message_id, outbound_id, provider, provider_message_id))
    await conn.execute(
        """UPDATE messages m SET status = s.status, updated_at = now()
           FROM (SELECT status FROM message_statuses WHERE provider = %s AND provider_message_id = %s
                 ORDER BY charla_status_evidence(status) DESC LIMIT 1) s
           WHERE m.outbound_id = %s AND m.status <> 'queued' AND charla_status_advances(m.status, s.status)""",
        (provider, provider_message_id, outbound_id))


async def mark_sent(conn: Conn, outbound_id: uuid.UUID) -> None:
    """All parts are out: queued → sent, then the best status already recorded for any part."""
    await conn.execute("UPDATE messages SET status = 'sent', updated_at = now() "
                       "WHERE outbound_id = %s AND status = 'queued'", (outbound_id,))
    await conn.execute(
        """UPDATE messages m SET status = s.status, updated_at = now()
           FROM (SELECT st.status FROM message_statuses st JOIN outbound_parts p
                   ON p.provider = st.provider AND p.provider_message_id = st.provider_message_id
                 WHERE p.outbound_id = %s ORDER BY charla_status_evidence(st.status) DESC LIMIT 1) s
           WHERE m.outbound_id = %s AND charla_status_advances(m.status, s.status)""",
        (outbound_id, outbound_id))


async def record_status(conn: Conn, provider: str, provider_message_id: str, status: str,
                        outbound_id: uuid.UUID | None, occurred_at: datetime | None,
                        errors: list[dict[str, object]]) -> None:
    """Record a delivery status (repeats ignored) and move the message forward, never backward (a failure
    reported after the message was delivered is stale: schema/0010_stale_failures.sql).

    The message is found by its outbound id (biz_opaque_callback_data) or the provider id of any part;
    one still being sent (queued) is left alone: the sender applies recorded statuses when it finishes.
    """
    await conn.execute(
        """INSERT INTO message_statuses (provider, provider_message_id, status, outbound_id, occurred_at, errors)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (provider, provider_message_id, status, outbound_id, occurred_at, Jsonb(errors)))
    await conn.execute(
        """UPDATE messages m SET status = %s, updated_at = now(),
                  error = CASE WHEN %s = 'failed' THEN %s ELSE m.error END
           WHERE m.outbound_id = COALESCE(%s, (SELECT outbound_id FROM outbound_parts
                                             WHERE provider = %s AND provider_message_id = %s))
             AND m.status <> 'queued' AND charla_status_advances(m.status, %s)""",
        (status, status, Jsonb({"errors": errors}), outbound_id, provider, provider_message_id, status))


async def note_template(conn: Conn, outbound_id: uuid.UUID, template: str) -> None:
    """Remember that the reply went out as `template` (the 24-hour window had closed)."""
    await conn.execute("UPDATE messages SET payload = payload || jsonb_build_object('sent_as_template', %s::text) "
                       "WHERE outbound_id = %s", (template, outbound_id))


async def mark_unreachable(conn: Conn, outbound_id: uuid.UUID, reason: str) -> None:
    """The provider says this learner cannot receive messages: stop trying until they write again."""
    await conn.execute(
        """UPDATE learners SET unreachable_at = now(), unreachable_reason = %s
           WHERE id = (SELECT learner_id FROM messages WHERE outbound_id = %s)""", (reason, outbound_id))


async def mark_failed(conn: Conn, outbound_id: uuid.UUID, error: dict[str, object]) -> None:
    await conn.execute(
        "UPDATE messages SET status = 'failed', error = %s, updated_at = now() WHERE outbound_id = %s",
        (Jsonb(error), outbound_id))
