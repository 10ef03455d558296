"""The conversation agent: turns each inbound learner message into exactly one recorded reply.

For now it echoes (the tutor arrives with its own issue); what it proves is the exactly-once path:
record the inbound message, record the reply and mark the inbound answered in one transaction, then
hand the reply to the outbox. A retry after a crash finds the recorded reply and re-publishes it under
the same dedupe key, so the sender sees it once. Each message is marked read (with "typing…") at once,
beside the turn, not through the bus: a late receipt is worthless and it is not a message.
"""

from __future__ import annotations

import asyncio

from charla import constants as c
from charla import learners, messages
from charla.channels import mark_read, open_channels
from charla.errors import PermanentError
from charla.events import Event, InboundMessage, OutboundMessage
from charla.runtime import Resources
from charla.worker import Handler

# Kinds Charla cannot use yet, as a learner would name them.
_CANNOT_USE = {"sticker": "stickers", "location": "locations", "contacts": "contact cards",
               "document": "documents", "video": "videos", "image": "images"}
_NO_REPLY = {"reaction"}  # a reaction (or its removal) is noted, not answered


def build(res: Resources) -> Handler:
    channels = open_channels(res, twilio=False)
    receipts: set[asyncio.Task[None]] = set()

    async def handle(event: Event) -> None:
        if not isinstance(event, InboundMessage):
            raise PermanentError(f"conversation agent cannot handle {event.type}")
        text = compose_reply(event)
        if text is not None:  # blue ticks and "typing…" while the reply is prepared
            task = asyncio.create_task(mark_read(res, channels, event.provider, event.learner, event.message_id))
            receipts.add(task)
            task.add_done_callback(receipts.discard)
        await answer(res, event, text)

    return handle


def compose_reply(event: InboundMessage) -> str | None:
    """Placeholder tutor: echo what the learner wrote; say plainly what Charla cannot take yet."""
    if event.kind in _NO_REPLY:
        return None
    if event.kind in ("interactive", "button"):
        return f"You chose: {event.text}"
    if event.kind == "audio":
        return "I can't listen to voice notes yet. Could you type it? I'll correct it right away."
    what = _CANNOT_USE.get(event.kind, "that kind of message")
    if event.text and event.kind != "text":
        return f"Echo: {event.text}\n\n(I can only read the caption: I can't look at {what} yet.)"
    if event.text:
        return f"Echo: {event.text}"
    return f"I can read text messages, but {what} are something I can't use yet. Write to me and I'll help!"


async def answer(res: Resources, event: InboundMessage, text: str | None) -> None:
    """Record `event` and its reply `text` (None: no reply) once, then hand the reply to the outbox."""
    async with res.pool.connection() as conn, conn.transaction():
        learner_id = await learners.upsert(conn, event.identity, event.sent_at or event.at)
        inbound_id = await messages.record_inbound(conn, learner_id, event)
        reply = await messages.find_reply(conn, inbound_id)
        if reply is None and text is not None:
            reply = await messages.record_reply(conn, learner_id, event, inbound_id, text)
    if reply is None or reply.status != "queued":
        return
    outbound = OutboundMessage(id=f"out-{reply.outbound_id}", learner=event.learner,
                               outbound_id=str(reply.outbound_id), provider=event.provider, to=event.identity,
                               text=reply.body, reply_to=event.message_id, via=event.payload.get("to"))
    await res.bus.publish(c.STREAM_OUTBOX, outbound, dedupe_key=f"outbox:{reply.outbound_id}")
