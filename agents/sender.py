"""The sender agent: the only place replies leave Charla. Idempotent per outbound id."""

from __future__ import annotations

import logging
import uuid

from charla import messages
from charla.chunking import split_text
from charla.console import console_channel
from charla.errors import PermanentError
from charla.events import Event, OutboundMessage
from charla.graph import GraphClient, GraphPermanentError
from charla.runtime import Resources
from charla.worker import Handler

log = logging.getLogger(__name__)


def build(res: Resources) -> Handler:
    graph = _graph_client(res)

    async def handle(event: Event) -> None:
        if not isinstance(event, OutboundMessage):
            raise PermanentError(f"sender cannot handle {event.type}")
        await send(res, graph, event)

    return handle


def _graph_client(res: Resources) -> GraphClient | None:
    s = res.settings
    if s.whatsapp_provider != "meta":
        return None
    if not (s.whatsapp_access_token and s.whatsapp_phone_number_id):
        raise PermanentError("WHATSAPP_PROVIDER=meta needs WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID")
    return GraphClient(res.http, base_url=s.whatsapp_api_base_url,
                       token=s.whatsapp_access_token.get_secret_value(),
                       phone_number_id=s.whatsapp_phone_number_id)


async def send(res: Resources, graph: GraphClient | None, event: OutboundMessage) -> None:
    """Send every part of `event` not sent yet, recording each as it goes; idempotent per outbound id."""
    outbound_id = uuid.UUID(event.outbound_id)
    async with res.pool.connection() as conn:
        state = await messages.send_state(conn, outbound_id)
    if state is None or state.status != "queued":
        return  # already sent (a redelivery), failed for good, or unknown to the log
    parts = split_text(event.text, res.settings.text_limit(event.provider))
    for index in range(state.parts_sent, len(parts)):
        try:
            provider_id = await _deliver(res, graph, event, parts[index], event.reply_to if index == 0 else None)
        except GraphPermanentError as exc:
            async with res.pool.connection() as conn:
                await messages.mark_failed(conn, outbound_id, {"code": exc.code, "message": str(exc), "part": index})
            log.warning("send %s failed for good: %s", event.outbound_id, exc)
            return
        async with res.pool.connection() as conn:
            await messages.record_part_sent(conn, outbound_id, index, provider_id)
    async with res.pool.connection() as conn:
        await messages.mark_sent(conn, outbound_id)


async def _deliver(res: Resources, graph: GraphClient | None, event: OutboundMessage, text: str,
                   reply_to: str | None) -> str:
    if event.provider == "meta" and graph is not None:
        to = event.to.wa_id or event.to.user_id
        if not to:
            raise PermanentError(f"outbound {event.outbound_id} has no WhatsApp recipient")
        return await graph.send_text(to, text, reply_to=reply_to)
    if event.provider == "console":
        part = event.model_copy(update={"text": text})
        await res.redis.publish(console_channel(event.learner), part.model_dump_json())
        return f"console.{event.outbound_id}"
    raise PermanentError(f"no sender for provider {event.provider!r} (WHATSAPP_PROVIDER="
                         f"{res.settings.whatsapp_provider})")
