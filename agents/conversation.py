"""The conversation agent: turns each inbound learner message into exactly one recorded reply.

For now it echoes (the tutor arrives with its own issue); what it proves is the exactly-once path:
record the inbound message, record the reply and mark the inbound answered in one transaction, then
hand the reply to the outbox. A retry after a crash finds the recorded reply and re-publishes it under
the same dedupe key, so the sender sees it once.
"""

from __future__ import annotations

from charla import constants as c
from charla import learners, messages
from charla.errors import PermanentError
from charla.events import Event, InboundMessage, OutboundMessage
from charla.runtime import Resources
from charla.worker import Handler


def build(res: Resources) -> Handler:
    async def handle(event: Event) -> None:
        if not isinstance(event, InboundMessage):
            raise PermanentError(f"conversation agent cannot handle {event.type}")
        await answer(res, event)

    return handle


def compose_reply(event: InboundMessage) -> str:
    """Placeholder tutor: echo what the learner wrote."""
    return f"Echo: {event.text}" if event.text else f"(received a {event.kind} message)"


async def answer(res: Resources, event: InboundMessage) -> None:
    async with res.pool.connection() as conn, conn.transaction():
        learner_id = await learners.upsert(conn, event.identity, event.sent_at or event.at)
        inbound_id = await messages.record_inbound(conn, learner_id, event)
        reply = await messages.find_reply(conn, inbound_id)
        if reply is None:
            reply = await messages.record_reply(conn, learner_id, event, inbound_id, compose_reply(event))
    if reply.status != "queued":
        return
    outbound = OutboundMessage(id=f"out-{reply.outbound_id}", learner=event.learner,
                               outbound_id=str(reply.outbound_id), provider=event.provider, to=event.identity,
                               text=reply.body, reply_to=event.message_id)
    await res.bus.publish(c.STREAM_OUTBOX, outbound, dedupe_key=f"outbox:{reply.outbound_id}")
