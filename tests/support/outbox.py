"""Replies put straight into the outbox, and the state a sender killed in mid-send leaves behind."""

from __future__ import annotations

import itertools
import uuid

from charla.core.events import Identity, InboundMessage, OutboundMessage
from charla.core.runtime import Resources
from charla.store import learners, messages

_ids = itertools.count()


async def reply_event(res: Resources, identity: Identity, text: str, provider: str = "meta") -> OutboundMessage:
    """Record an inbound message from `identity` and Charla's reply `text`; the reply's outbox event."""
    inbound = InboundMessage(learner=identity.key(), provider=provider, message_id=f"in{next(_ids)}.{uuid.uuid4()}",
                             identity=identity, kind="text", text="?")
    async with res.pool.connection() as conn, conn.transaction():
        learner_id = await learners.upsert(conn, identity, inbound.at)
        inbound_id = await messages.record_inbound(conn, learner_id, inbound)
        reply = await messages.record_reply(conn, learner_id, provider, inbound.message_id, inbound_id, text)
    return OutboundMessage(learner=identity.key(), outbound_id=str(reply.outbound_id), provider=provider,
                           to=identity, text=text, reply_to=inbound.message_id)


async def interrupted(res: Resources, event: OutboundMessage, part: int) -> None:
    """The state a sender SIGKILLed in mid-send leaves: parts before `part` recorded, `part` begun."""
    outbound_id = uuid.UUID(event.outbound_id)
    async with res.pool.connection() as conn, conn.transaction():
        for index in range(part):
            await messages.record_part_sent(conn, event.provider, outbound_id, index,
                                            f"part{index}.{outbound_id}")
        await messages.note_sending(conn, outbound_id, part)
