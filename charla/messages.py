"""The message log: inbound messages recorded once, replies recorded before they are sent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from charla.events import InboundMessage

Conn = AsyncConnection[tuple[object, ...]]

# Outbound ids are derived from what they answer, so a re-run of the same turn produces the same id.
_OUTBOUND_NS = uuid.UUID("6f1c2a53-8d0e-4f43-9f5e-3c1d2b7a9e10")


@dataclass(frozen=True)
class Outbound:
    id: int
    outbound_id: uuid.UUID
    body: str
    status: str


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


async def find_reply(conn: Conn, inbound_id: int, part: str = "reply") -> Outbound | None:
    row = await (await conn.execute(
        "SELECT id, outbound_id, body, status FROM messages WHERE reply_to = %s AND reply_part = %s",
        (inbound_id, part))).fetchone()
    return None if row is None else Outbound(int(str(row[0])), uuid.UUID(str(row[1])), str(row[2]), str(row[3]))


async def record_reply(conn: Conn, learner_id: uuid.UUID, inbound: InboundMessage, inbound_id: int, body: str,
                       part: str = "reply") -> Outbound:
    """Record the reply and mark the inbound message answered (call inside one transaction)."""
    outbound_id = outbound_id_for(inbound.provider, inbound.message_id, part)
    row = await (await conn.execute(
        """INSERT INTO messages (learner_id, direction, provider, outbound_id, reply_to, reply_part, kind, body,
                                 status)
           VALUES (%s, 'out', %s, %s, %s, %s, 'text', %s, 'queued') RETURNING id""",
        (learner_id, inbound.provider, outbound_id, inbound_id, part, body))).fetchone()
    assert row is not None
    await conn.execute("UPDATE messages SET status = 'answered', updated_at = now() WHERE id = %s", (inbound_id,))
    return Outbound(int(str(row[0])), outbound_id, body, "queued")


@dataclass(frozen=True)
class SendState:
    status: str
    parts_sent: int  # parts of a split reply already accepted by the provider


async def send_state(conn: Conn, outbound_id: uuid.UUID) -> SendState | None:
    row = await (await conn.execute(
        "SELECT status, COALESCE((payload->>'parts_sent')::int, 0) FROM messages WHERE outbound_id = %s",
        (outbound_id,))).fetchone()
    return None if row is None else SendState(str(row[0]), int(str(row[1])))


async def record_part_sent(conn: Conn, outbound_id: uuid.UUID, index: int, provider_message_id: str) -> None:
    """Remember that part `index` went out, so a redelivery resumes after it instead of repeating it."""
    await conn.execute(
        """UPDATE messages SET provider_message_id = %s, updated_at = now(),
                  payload = jsonb_set(jsonb_set(payload, '{parts_sent}', to_jsonb(%s::int)), '{provider_ids}',
                                      COALESCE(payload->'provider_ids', '[]'::jsonb) || to_jsonb(%s::text))
           WHERE outbound_id = %s AND status = 'queued'""",
        (provider_message_id, index + 1, provider_message_id, outbound_id))


async def mark_sent(conn: Conn, outbound_id: uuid.UUID) -> None:
    await conn.execute("UPDATE messages SET status = 'sent', updated_at = now() "
                       "WHERE outbound_id = %s AND status = 'queued'", (outbound_id,))


async def mark_failed(conn: Conn, outbound_id: uuid.UUID, error: dict[str, object]) -> None:
    await conn.execute(
        "UPDATE messages SET status = 'failed', error = %s, updated_at = now() WHERE outbound_id = %s",
        (Jsonb(error), outbound_id))
