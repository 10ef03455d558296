"""Operator broadcasts: a notice or a practice template to a segment of learners.

`create` fixes the recipients (matching learners neither blocked nor unreachable) in one transaction;
charla.ops.broadcast_dispatch then sends them, paced. Delivery counts are the messages' own statuses, which
the sender keeps up to date.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from psycopg import sql
from psycopg.rows import kwargs_row
from psycopg.types.json import Jsonb

from charla.core.events import Template
from charla.store.messages import Conn

log = logging.getLogger(__name__)
_NS = uuid.UUID("0bb45f38-d31c-4b6e-b488-89fc361c037e")


class UnknownBroadcast(LookupError):
    """No broadcast has this id."""


@dataclass(frozen=True)
class Segment:
    """Who a broadcast is for; None matches everyone."""

    language: str | None = None  # the target language in the learner's profile (ISO 639-1)
    level: str | None = None  # CEFR level: the declared one, else the inferred one
    paid: bool | None = None  # True: an active entitlement; False: none

    def describe(self) -> str:
        parts = [f"language {self.language}" if self.language else "", f"level {self.level}" if self.level else "",
                 "" if self.paid is None else ("paid" if self.paid else "free")]
        return ", ".join(p for p in parts if p) or "everyone"


@dataclass(frozen=True)
class Summary:
    """A broadcast and its counts. Delivery counts are cumulative: a read message was also delivered and sent;
    `failed` includes messages withdrawn unsent by `cancel`."""

    id: int
    created_at: datetime
    text: str
    segment: Segment
    status: Literal["sending", "done", "cancelled"]
    recipients: int
    pending: int
    queued: int
    skipped: int
    sent: int
    delivered: int
    read: int
    failed: int
    created_by: str = "operator"
    template: str | None = None  # the template's name, when there is one
    rate: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)  # why recipients were skipped (`summary` only)


def outbound_id(broadcast_id: int, learner_id: uuid.UUID) -> uuid.UUID:
    """The recipient's outbound id: the same every time, so a send is idempotent."""
    return uuid.uuid5(_NS, f"broadcast:{broadcast_id}:{learner_id}")


_MATCHING = sql.SQL("""
    SELECT l.id FROM learners l LEFT JOIN profiles p ON p.learner_id = l.id
    WHERE l.unreachable_at IS NULL AND l.opted_out_at IS NULL
      AND (%(language)s::text IS NULL
           OR lower(coalesce(p.data->>'target_language', %(default_language)s::text)) = lower(%(language)s::text))
      AND (%(level)s::text IS NULL
           OR upper(coalesce(p.data->>'level_measured', p.data->>'level', p.data->>'level_inferred'))
              = upper(%(level)s::text))
      AND (%(paid)s::boolean IS NULL OR %(paid)s::boolean = EXISTS (
           SELECT 1 FROM entitlements e WHERE e.learner_id = l.id AND e.status = 'active'))
      AND NOT (ARRAY['wa:' || l.wa_id, 'bsuid:' || l.wa_user_id, 'tw:' || l.twilio_id, 'console:' || l.console_id]
               && %(blocked)s::text[])""")


def _segment_params(segment: Segment, default_language: str | None, blocked: Collection[str]) -> dict[str, Any]:
    return {**asdict(segment), "default_language": default_language, "blocked": list(blocked)}


async def audience(conn: Conn, segment: Segment, *, default_language: str | None = None,
                   blocked: Collection[str] = ()) -> int:
    """How many learners `create` would address now. `default_language` (CHARLA_DEFAULT_TARGET_LANGUAGE) is the
    target language of learners who never set one; `blocked` are learner keys (`charla blocked`)."""
    query = sql.SQL("SELECT count(*) FROM ({}) matching").format(_MATCHING)
    row = await (await conn.execute(query, _segment_params(segment, default_language, blocked))).fetchone()
    return int(str(row[0])) if row else 0


async def create(conn: Conn, segment: Segment, text: str, *, template: Template | None = None,
                 created_by: str = "operator", rate: float = 20.0, default_language: str | None = None,
                 blocked: Collection[str] = ()) -> int:
    """Record a broadcast and one pending recipient per matching learner, in one transaction; returns its id.
    Learners who are blocked, unreachable or opted out are left out (see `audience` for the keywords)."""
    async with conn.transaction():
        row = await (await conn.execute(
            """INSERT INTO broadcasts (created_by, segment, text, template, rate) VALUES (%s, %s, %s, %s, %s)
               RETURNING id""",
            (created_by, Jsonb(asdict(segment)), text, Jsonb(template.model_dump()) if template else None,
             rate))).fetchone()
        broadcast_id = int(str(row[0])) if row else 0
        found = await (await conn.execute(_MATCHING, _segment_params(segment, default_language, blocked))).fetchall()
        learners = [uuid.UUID(str(r[0])) for r in found]
        await conn.execute(
            """INSERT INTO broadcast_recipients (broadcast_id, learner_id, outbound_id)
               SELECT %s, unnest(%s::uuid[]), unnest(%s::uuid[])""",
            (broadcast_id, learners, [outbound_id(broadcast_id, learner) for learner in learners]))
    log.info("broadcast %s created by %s for %s: %d recipients", broadcast_id, created_by, segment.describe(),
             len(learners))
    return broadcast_id


_SUMMARY = sql.SQL("""
    SELECT b.id, b.created_at, b.text, b.segment, b.status, b.created_by, b.template->>'name' AS template, b.rate,
           count(r.learner_id) AS recipients,
           count(*) FILTER (WHERE r.state = 'pending') AS pending,
           count(*) FILTER (WHERE r.state = 'queued') AS queued,
           count(*) FILTER (WHERE r.state = 'skipped') AS skipped,
           count(*) FILTER (WHERE charla_status_rank(m.status) BETWEEN 1 AND 4) AS sent,
           count(*) FILTER (WHERE charla_status_rank(m.status) BETWEEN 2 AND 4) AS delivered,
           count(*) FILTER (WHERE charla_status_rank(m.status) BETWEEN 3 AND 4) AS read,
           count(*) FILTER (WHERE m.status = 'failed') AS failed
    FROM broadcasts b LEFT JOIN broadcast_recipients r ON r.broadcast_id = b.id
    LEFT JOIN messages m ON m.outbound_id = r.outbound_id
    WHERE %(id)s::bigint IS NULL OR b.id = %(id)s::bigint
    GROUP BY b.id ORDER BY b.id DESC LIMIT %(limit)s""")


def _summary_row(*, segment: dict[str, Any], **columns: Any) -> Summary:
    return Summary(segment=Segment(**segment), **columns)


async def listing(conn: Conn, limit: int = 50) -> list[Summary]:
    """The latest broadcasts, newest first, with their counts."""
    async with conn.cursor(row_factory=kwargs_row(_summary_row)) as cur:
        await cur.execute(_SUMMARY, {"id": None, "limit": limit})
        return await cur.fetchall()


async def summary(conn: Conn, broadcast_id: int) -> Summary:
    """One broadcast with its counts and why recipients were skipped; raises UnknownBroadcast."""
    async with conn.cursor(row_factory=kwargs_row(_summary_row)) as cur:
        await cur.execute(_SUMMARY, {"id": broadcast_id, "limit": 1})
        found = await cur.fetchone()
    if found is None:
        raise UnknownBroadcast(f"no broadcast {broadcast_id}")
    rows = await (await conn.execute(
        """SELECT coalesce(reason, ''), count(*) FROM broadcast_recipients WHERE broadcast_id = %s AND state = 'skipped'
           GROUP BY 1 ORDER BY 2 DESC""", (broadcast_id,))).fetchall()
    return replace(found, reasons={str(r[0]): int(str(r[1])) for r in rows})


async def cancel(conn: Conn, broadcast_id: int) -> bool:
    """Stop a broadcast that is still sending: pending recipients are skipped and messages not yet handed to
    WhatsApp are withdrawn (recorded failed). False when it is unknown or already done or cancelled."""
    async with conn.transaction():
        row = await (await conn.execute(
            "UPDATE broadcasts SET status = 'cancelled' WHERE id = %s AND status = 'sending' RETURNING id",
            (broadcast_id,))).fetchone()
        if row is None:
            return False
        await conn.execute("""UPDATE broadcast_recipients SET state = 'skipped', reason = 'cancelled'
                              WHERE broadcast_id = %s AND state = 'pending'""", (broadcast_id,))
        await conn.execute(
            """UPDATE messages m SET status = 'failed', error = %s, updated_at = now() FROM broadcast_recipients r
               WHERE r.broadcast_id = %s AND m.outbound_id = r.outbound_id AND m.status = 'queued'""",
            (Jsonb({"reason": "broadcast cancelled"}), broadcast_id))
    log.info("broadcast %s cancelled", broadcast_id)
    return True


def render(found: Summary) -> str:
    """A broadcast as `charla broadcast show` prints it."""
    lines = [f"broadcast {found.id} · {found.status} · {found.created_at:%Y-%m-%d %H:%M %Z} by {found.created_by}",
             f"segment: {found.segment.describe()} · template: {found.template or 'none'} · rate: {found.rate:g}/s",
             f"text: {found.text}",
             f"recipients: {found.recipients} ({found.pending} pending, {found.queued} queued, "
             f"{found.skipped} skipped)",
             f"delivery: {found.sent} sent, {found.delivered} delivered, {found.read} read, {found.failed} failed"]
    lines += [f"skipped, {reason or 'no reason'}: {count}" for reason, count in found.reasons.items()]
    return "\n".join(lines)


def line(found: Summary) -> str:
    """One broadcast on one line, as `charla broadcast list` prints it."""
    text = found.text if len(found.text) <= 40 else found.text[:39] + "…"
    return (f"{found.id:>5}  {found.created_at:%Y-%m-%d %H:%M}  {found.status:<9}  {found.recipients:>6} to  "
            f"{found.pending:>5} pending  {found.sent:>6} sent  {found.delivered:>6} delivered  {found.read:>6} read  "
            f"{found.failed:>4} failed  {text}")
