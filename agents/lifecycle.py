"""WhatsApp's own notices and the learner's preferences, for the conversation and receipts agents.

A system notice is never answered. A number (or business-scoped id) change moves the learner to the new ids
(charla.store.lifecycle.move) and their Redis state to the new ordering key; an identity change (WhatsApp
reinstalled, a new phone) is recorded for the operator. Marketing-preference updates from WhatsApp (`stop` /
`resume`) pause and resume everything proactive, as the words STOP and START do in the chat.
"""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis

from charla.channels.registry import traits
from charla.core import constants as c
from charla.core import logs, window
from charla.core.events import InboundMessage, PreferenceUpdate, SystemNotice, utcnow
from charla.core.runtime import Resources
from charla.store import learners, lifecycle, session, turns
from charla.store.messages import Conn

log = logging.getLogger(__name__)
# Notices that say the person behind the chat may have changed (reinstalled, new device): recorded only.
_IDENTITY = {"customer_identity_changed", "user_identity_changed"}


async def notice(res: Resources, event: SystemNotice) -> uuid.UUID | None:
    """Apply a system notice; the learner it concerns (None when they never wrote)."""
    async with res.pool.connection() as conn, conn.transaction():
        learner_id, kind = await _apply(conn, event)
        if learner_id is None:
            log.info("system notice %s for an unknown learner: nothing to do", event.notice)
            return None
        await lifecycle.record(conn, learner_id, kind, _detail(event))
        now_key = await learners.key_of(conn, learner_id)
    if event.new_identity is not None and now_key is not None:
        await _move_state(res.redis, event.identity.key(), now_key)
    log.info("learner %s: %s", learner_id, kind)
    return learner_id


async def _apply(conn: Conn, event: SystemNotice) -> tuple[uuid.UUID | None, str]:
    if event.new_identity is not None:
        kind = "number_changed" if event.new_identity.wa_id else "user_id_changed"
        return await lifecycle.move(conn, event.identity, event.new_identity), kind
    kind = "identity_changed" if event.notice in _IDENTITY else "system_notice"
    return await learners.find(conn, event.identity), kind


def _detail(event: SystemNotice) -> dict[str, object]:
    new = event.new_identity
    return {"notice": event.notice, "message_id": event.message_id, "body": event.body[:200],
            "from": event.identity.model_dump(exclude_none=True),
            "to": new.model_dump(exclude_none=True) if new else None}


async def _move_state(redis: Redis, old_key: str, new_key: str) -> None:
    """The session and an operator's block follow the learner to their new ordering key."""
    if old_key == new_key:
        return
    await session.move(redis, old_key, new_key)
    if await redis.sismember(c.BLOCKED_KEY, old_key):
        await redis.sadd(c.BLOCKED_KEY, new_key)
        await redis.srem(c.BLOCKED_KEY, old_key)


async def current(conn: Conn, learner_id: uuid.UUID, event: InboundMessage) -> InboundMessage:
    """`event` as from the learner's ids now, when it came from ids replaced by a number change (a late
    delivery): the reply goes to the number they use, and their session continues."""
    if not traits(event.provider).renumbers or not await learners.is_alias(conn, event.identity):
        return event
    identity = await learners.identity(conn, learner_id)
    return event if identity is None else event.model_copy(update={"identity": identity, "learner": identity.key()})


async def may_write(conn: Conn, learner_id: uuid.UUID) -> bool:
    """Whether free-form text may reach the learner now (their 24-hour window is open)."""
    row = await (await conn.execute("SELECT last_inbound_at FROM learners WHERE id = %s", (learner_id,))).fetchone()
    return row is not None and window.is_open(row[0], utcnow())  # type: ignore[arg-type]


async def waiting_turn(res: Resources, event: SystemNotice, learner_id: uuid.UUID) -> InboundMessage | None:
    """The learner's newest unanswered message as an event for a turn, when one waits: a message from the new
    number published before the notice left its turn to the notice (a later entry of the same key)."""
    async with res.pool.connection() as conn:
        batch = await turns.waiting(conn, learner_id)
        identity = await learners.identity(conn, learner_id)
    if not batch or identity is None:
        return None
    newest = batch[-1]
    return InboundMessage(learner=identity.key(), provider=event.provider, message_id=newest.message_id,
                          identity=identity, kind=newest.kind, text=newest.text, payload=newest.payload)


async def preference(res: Resources, event: PreferenceUpdate) -> None:
    """WhatsApp's marketing-preference update: `stop` pauses everything proactive, `resume` allows it again."""
    async with res.pool.connection() as conn, conn.transaction():
        learner_id = await learners.find(conn, event.identity)
        if learner_id is None:
            log.info("preference %s for an unknown learner %s: ignored", event.value, logs.pseudonym(event.learner))
            return
        await lifecycle.set_opted_out(conn, learner_id, event.value == "stop", f"whatsapp:{event.category}")


async def amend(conn: Conn, learner_id: uuid.UUID, inbound_id: int, event: InboundMessage) -> str | None:
    """An edit or deletion of an earlier message (`event`, recorded as `inbound_id`): applied to it while it
    waits for its answer (then this event needs no answer of its own). Returns the earlier message's status
    before, None when it is unknown (an edit is then answered as the words it carries)."""
    original = str(event.payload.get("original_id") or "")
    message = event.payload.get("message")
    edited = event.text if event.kind == "edit" else None
    status = await lifecycle.amend(conn, learner_id, event.provider, original, edited,
                                   message if isinstance(message, dict) else None) if original else None
    if event.kind == "revoke" or status not in (None, "answered"):
        await turns.mark_noted(conn, inbound_id)
    return status


async def forget_said(redis: Redis, learner: str, event: InboundMessage, ttl_s: int) -> None:
    """A deleted message leaves the learner's session too (an operator's held conversation keeps it there)."""
    sess = await session.load(redis, learner)
    original = str(event.payload.get("original_id") or "")
    if sess.has(original):
        sess.messages = [said for said in sess.messages if said.id != original]
        await session.save(redis, learner, sess, ttl_s)
