"""The due practice prompts of one dispatch batch: locked and read with everything composing them needs
(the learner's ids and window, profile, channel, reasons to skip, FSRS cards, answers of the past two days)
in one query, so a batch of hundreds costs one round trip instead of a few per prompt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from charla.core.events import Identity
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.tutor import practice

# One batch of due prompts, locked, with each learner's ids, window, profile, channel, reasons to skip, FSRS
# cards and answers of the past two days (for today's review count): one round trip for the whole batch.
BATCH = """
    WITH due AS (SELECT id, learner_id, kind, slot_at, body FROM practice_prompts WHERE status = 'due'
                 ORDER BY slot_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    SELECT d.id, d.learner_id, d.kind, d.slot_at, d.body, l.wa_id, l.wa_user_id, l.twilio_id, l.console_id,
           l.display_name, l.last_inbound_at, pr.data, ch.provider, ch.via,
           l.unreachable_at IS NOT NULL, l.opted_out_at IS NOT NULL,
           EXISTS (SELECT 1 FROM messages m WHERE m.learner_id = l.id AND m.direction = 'out' AND m.status = 'failed'
                   AND m.updated_at > %(now)s - interval '24 hours'
                   AND (m.error->>'code' = '131049' OR m.error->'errors'->0->>'code' = '131049')),
           (SELECT max(slot_at) FROM practice_prompts q WHERE q.learner_id = l.id AND q.status = 'queued'),
           (SELECT count(*) FROM practice_prompts q WHERE q.learner_id = l.id AND q.kind IN ('practice', 'reading')
              AND q.status = 'queued' AND q.answered_at IS NULL
              AND (l.last_inbound_at IS NULL OR q.slot_at > l.last_inbound_at)),
           ARRAY(SELECT k.item FROM practice_cards k WHERE k.learner_id = l.id ORDER BY k.item),
           ARRAY(SELECT k.due FROM practice_cards k WHERE k.learner_id = l.id ORDER BY k.item),
           ARRAY(SELECT q.answered_at FROM practice_prompts q WHERE q.learner_id = l.id
                   AND q.answered_at > %(now)s - interval '2 days'),
           l.created_at,
           EXISTS (SELECT 1 FROM messages m WHERE m.learner_id = l.id AND m.direction = 'in' AND m.kind = 'audio'
                   AND m.created_at > %(now)s - interval '30 days'),
           ARRAY(SELECT q.kind FROM practice_prompts q WHERE q.learner_id = l.id AND q.status = 'queued'
                   AND q.kind IN ('practice', 'reading') ORDER BY q.slot_at DESC LIMIT %(every)s),
           EXISTS (SELECT 1 FROM activities a WHERE a.learner_id = l.id AND a.kind <> 'speak'
                   AND a.updated_at > %(now)s - interval '1 day')
    FROM due d JOIN learners l ON l.id = d.learner_id LEFT JOIN profiles pr ON pr.learner_id = d.learner_id
    LEFT JOIN LATERAL (SELECT m.provider, m.payload->>'to' AS via FROM messages m
                       WHERE m.learner_id = d.learner_id AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1) ch ON true
    ORDER BY d.slot_at"""



@dataclass
class Due:
    """One due prompt with everything its composing needs, read for a whole batch in one query."""

    prompt_id: int
    learner_id: uuid.UUID
    kind: str
    slot_at: datetime
    body: str | None
    identity: Identity
    last_inbound_at: datetime | None
    name: str | None
    learner: Profile = field(default_factory=Profile)
    provider: str = "meta"
    via: str | None = None
    unreachable: bool = False
    opted_out: bool = False
    failed_131049: bool = False
    last_queued: datetime | None = None
    unanswered: int = 0
    cards: list[practice.CardRow] = field(default_factory=list)
    answered: list[datetime] = field(default_factory=list)
    joined: datetime | None = None  # when the learner first wrote (no weekly report in their first week)
    voiced: bool = False  # sent a voice note in the last 30 days
    recent: list[str] = field(default_factory=list)  # kinds of the last prompts sent, newest first
    busy: bool = False  # in another guided activity, touched in the last day (a reading would replace it)


async def read(conn: Conn, limit: int, now: datetime, every: int = 1) -> list[Due]:
    """Lock up to `limit` due prompts and read, in the same query, what composing each needs (`every`: how
    many of each learner's last prompts sent to read, for the read-aloud rotation)."""
    rows = await (await conn.execute(BATCH, {"limit": limit, "now": now, "every": every})).fetchall()
    return [Due(int(str(r[0])), uuid.UUID(str(r[1])), str(r[2]), r[3], opt_str(r[4]),  # type: ignore[arg-type]
                identity(r[5:9], r[9]), r[10], opt_str(r[9]),  # type: ignore[arg-type]
                Profile.model_validate(r[11]) if r[11] else Profile(), opt_str(r[12]) or "meta", opt_str(r[13]),
                bool(r[14]), bool(r[15]), bool(r[16]), r[17], int(str(r[18])),  # type: ignore[arg-type]
                [practice.CardRow(str(i), d) for i, d in zip(r[19], r[20], strict=True)],  # type: ignore[call-overload]
                list(r[21]), r[22], bool(r[23]), list(r[24]), bool(r[25]))  # type: ignore[call-overload, arg-type]
            for r in rows]


def why_not(due: Due, now: datetime) -> str | None:
    """A reason not to send this prompt: unreachable, opted out, a recent failed template, or backing off."""
    if due.unreachable:
        return "learner unreachable"
    if due.opted_out:
        return "learner opted out"
    if due.failed_131049:
        return "a template failed with 131049 in the last 24 hours"
    if due.unanswered >= 2 and due.last_queued is not None:
        wait = timedelta(days=min(2 ** (due.unanswered - 1), 14)) - timedelta(hours=1)
        if now - due.last_queued < wait:
            return f"backing off: {due.unanswered} prompts unanswered"
    return None


def opt_str(value: Any) -> str | None:
    """`value` as text, None kept."""
    return None if value is None else str(value)


def identity(ids: Any, name: Any) -> Identity:
    """The learner's ids from the learners columns wa_id, wa_user_id, twilio_id, console_id."""
    wa_id, user_id, twilio, console = ids
    return Identity(wa_id=opt_str(wa_id), user_id=opt_str(user_id), twilio=opt_str(twilio), console=opt_str(console),
                    name=opt_str(name))
