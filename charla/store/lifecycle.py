"""What happens to a learner's WhatsApp identity and preferences: number and user-id changes, identity
notices, opting out of proactive messages. Every change is recorded in `learner_events` for the operator
(the learner's record on the dashboard); ids a learner no longer has are kept in `learner_aliases`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from charla.core.events import Identity
from charla.store import learners
from charla.store.messages import Conn

_NEW = {"wa_id": "wa_id", "wa_user_id": "user_id"}  # learners column -> Identity field


@dataclass(frozen=True)
class LearnerEvent:
    id: int
    kind: str
    detail: dict[str, Any]
    created_at: datetime


async def record(conn: Conn, learner_id: uuid.UUID, kind: str, detail: dict[str, Any]) -> None:
    """One line of the learner's lifecycle record."""
    await conn.execute("INSERT INTO learner_events (learner_id, kind, detail) VALUES (%s, %s, %s)",
                       (learner_id, kind, Jsonb(detail)))


async def events(conn: Conn, learner_id: uuid.UUID, limit: int = 20) -> list[LearnerEvent]:
    """The learner's lifecycle record, newest first."""
    async with conn.cursor(row_factory=class_row(LearnerEvent)) as cur:
        await cur.execute("""SELECT id, kind, detail, created_at FROM learner_events WHERE learner_id = %s
                             ORDER BY id DESC LIMIT %s""", (learner_id, limit))
        return await cur.fetchall()


async def move(conn: Conn, old: Identity, new: Identity) -> uuid.UUID | None:
    """Move the learner known by `old` to `new`'s ids (one row keeps profile, history, memories, payments,
    schedules and window state); the ids replaced become aliases. A learner created meanwhile by a message
    from the new ids is folded in. None when `old` never wrote (nothing to move)."""
    learner_id = await learners.find(conn, old)
    if learner_id is None:
        return None
    newcomer = await learners.find(conn, new)
    if newcomer is not None and newcomer != learner_id:
        await _absorb(conn, learner_id, newcomer)
    row = await (await conn.execute("SELECT wa_id, wa_user_id FROM learners WHERE id = %s FOR UPDATE",
                                    (learner_id,))).fetchone()
    assert row is not None  # found above, in this transaction
    for (column, field), current in zip(_NEW.items(), row, strict=True):
        value = getattr(new, field)
        if value and value != current:
            await _replace(conn, learner_id, column, None if current is None else str(current), value)
    return learner_id


async def _replace(conn: Conn, learner_id: uuid.UUID, column: str, current: str | None, value: str) -> None:
    if current is not None:
        await conn.execute("""INSERT INTO learner_aliases (kind, value, learner_id) VALUES (%s, %s, %s)
                              ON CONFLICT (kind, value) DO UPDATE SET learner_id = EXCLUDED.learner_id""",
                           (column, current, learner_id))
    await conn.execute("DELETE FROM learner_aliases WHERE kind = %s AND value = %s", (column, value))
    query = sql.SQL("UPDATE learners SET {} = %s, unreachable_at = NULL, unreachable_reason = NULL WHERE id = %s")
    await conn.execute(query.format(sql.Identifier(column)), (value, learner_id))


async def _absorb(conn: Conn, keep: uuid.UUID, gone: uuid.UUID) -> None:
    """Fold `gone` (created by the new number's first messages before the notice) into `keep`: its messages
    and turns move over, the rest (an empty profile, a first session) is dropped with it."""
    for table in ("messages", "turns"):
        query = sql.SQL("UPDATE {} SET learner_id = %s WHERE learner_id = %s").format(sql.Identifier(table))
        await conn.execute(query, (keep, gone))
    await conn.execute(
        """UPDATE learners SET last_inbound_at = GREATEST(last_inbound_at,
                                                          (SELECT last_inbound_at FROM learners WHERE id = %s))
           WHERE id = %s""", (gone, keep))
    await conn.execute("DELETE FROM learners WHERE id = %s", (gone,))


async def set_opted_out(conn: Conn, learner_id: uuid.UUID, out: bool, source: str) -> bool:
    """Stop (or allow again) everything proactive for the learner; True when that changed something."""
    row = await (await conn.execute(
        """UPDATE learners SET opted_out_at = CASE WHEN %s THEN coalesce(opted_out_at, now()) END
           WHERE id = %s AND (opted_out_at IS NULL) = %s RETURNING id""", (out, learner_id, out))).fetchone()
    if row is not None:
        await record(conn, learner_id, "opted_out" if out else "opted_in", {"source": source})
    return row is not None


async def opted_out(conn: Conn, learner_id: uuid.UUID) -> bool:
    row = await (await conn.execute("SELECT opted_out_at IS NOT NULL FROM learners WHERE id = %s",
                                    (learner_id,))).fetchone()
    return bool(row and row[0])


async def amend(conn: Conn, learner_id: uuid.UUID, provider: str, original_id: str, edited: str | None,
                message: dict[str, Any] | None = None) -> str | None:
    """Apply an edit (the `edited` words; `message` its new version) or a deletion (`edited` None) to the
    learner's message `original_id` while it waits for its answer: an edit replaces its words, a deletion
    removes them from the log. Returns its status before ("received": not answered yet, "answered", …),
    None when it is not in the log."""
    row = await (await conn.execute(
        """SELECT id, status FROM messages WHERE provider = %s AND provider_message_id = %s AND learner_id = %s
             AND direction = 'in' FOR UPDATE""", (provider, original_id, learner_id))).fetchone()
    if row is None:
        return None
    if row[1] == "received" and edited is not None:
        await conn.execute("UPDATE messages SET body = %s, payload = %s, updated_at = now() WHERE id = %s",
                           (edited, Jsonb({"edited": True, "message": message or {}}), row[0]))
    elif row[1] == "received":
        await conn.execute("""UPDATE messages SET body = NULL, payload = '{"revoked": true}', status = 'revoked',
                              updated_at = now() WHERE id = %s""", (row[0],))
    return str(row[1])
