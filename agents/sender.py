"""The sender agent: the only place messages leave Charla. Idempotent per outbound id.

Long replies go out in parts (charla.chunking), each recorded as it is accepted so a redelivery resumes
after the last one. Outside the 24-hour window only the configured re-engagement template is sent; no
free-form attempt is made. Provider errors are typed: transient ones are retried with backoff by the bus,
permanent ones are recorded on the message (and mark the learner unreachable when that is the reason).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from charla import constants as c
from charla import messages
from charla.chunking import split_text
from charla.console import console_channel
from charla.errors import PermanentError, TransientError
from charla.events import Event, OutboundMessage, ReadReceipt
from charla.graph import UNREACHABLE_CODES, WINDOW_CLOSED, GraphAuthError, GraphClient, GraphPermanentError
from charla.runtime import Resources
from charla.worker import Handler

log = logging.getLogger(__name__)


def build(res: Resources) -> Handler:
    graph = _graph_client(res)

    async def handle(event: Event) -> None:
        if isinstance(event, ReadReceipt):
            await mark_read(res, graph, event)
        elif isinstance(event, OutboundMessage):
            await send(res, graph, event)
        else:
            raise PermanentError(f"sender cannot handle {event.type}")

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


async def mark_read(res: Resources, graph: GraphClient | None, event: ReadReceipt) -> None:
    """Best effort: a late read receipt is worthless, so failures are logged, not retried."""
    try:
        if event.provider == "meta" and graph is not None:
            await graph.mark_read(event.message_id)
        elif event.provider == "console":
            await res.redis.publish(console_channel(event.learner), event.model_dump_json())
    except (TransientError, PermanentError) as exc:
        log.info("mark-read of %s skipped: %s", event.message_id, exc)


async def send(res: Resources, graph: GraphClient | None, event: OutboundMessage) -> None:
    """Send every part of `event` not sent yet, recording each as it goes."""
    outbound_id = uuid.UUID(event.outbound_id)
    async with res.pool.connection() as conn:
        state = await messages.send_state(conn, outbound_id)
    if state is None or state.status != "queued":
        return  # already sent (a redelivery), failed for good, or unknown to the log
    if state.unreachable:
        await _fail(res, outbound_id, {"reason": "learner unreachable"})
        return
    if event.provider == "meta" and not state.window_open:
        await _send_template(res, graph, event, outbound_id)
        return
    parts = split_text(event.text, res.settings.text_limit(event.provider))
    for index in range(state.parts_sent, len(parts)):
        try:
            provider_id = await _deliver(res, graph, event, parts[index], event.reply_to if index == 0 else None)
        except GraphAuthError as exc:
            await _alert(res, exc.code, "WhatsApp access token rejected: set a valid WHATSAPP_ACCESS_TOKEN")
            raise
        except GraphPermanentError as exc:
            await _permanent_failure(res, graph, event, outbound_id, exc)
            return
        async with res.pool.connection() as conn:
            await messages.record_part_sent(conn, event.provider, outbound_id, index, provider_id)
    async with res.pool.connection() as conn:
        await messages.mark_sent(conn, outbound_id)


async def _deliver(res: Resources, graph: GraphClient | None, event: OutboundMessage, text: str,
                   reply_to: str | None) -> str:
    if event.provider == "meta" and graph is not None:
        return await graph.send_text(_recipient(event), text, reply_to=reply_to, tag=event.outbound_id)
    if event.provider == "console":
        part = event.model_copy(update={"text": text})
        await res.redis.publish(console_channel(event.learner), part.model_dump_json())
        return f"console.{event.outbound_id}.{uuid.uuid4().hex[:8]}"
    raise PermanentError(f"no sender for provider {event.provider!r} (WHATSAPP_PROVIDER="
                         f"{res.settings.whatsapp_provider})")


def _recipient(event: OutboundMessage) -> str:
    to = event.to.wa_id or event.to.user_id
    if not to:
        raise PermanentError(f"outbound {event.outbound_id} has no WhatsApp recipient")
    return to


async def _send_template(res: Resources, graph: GraphClient | None, event: OutboundMessage,
                         outbound_id: uuid.UUID) -> None:
    """Outside the 24-hour window: the re-engagement template instead of the free-form text."""
    name = res.settings.reengage_template
    if graph is None or not name:
        await _alert(res, WINDOW_CLOSED, "a reply waited past the 24-hour window and no "
                                         "WHATSAPP_REENGAGE_TEMPLATE is configured")
        await _fail(res, outbound_id, {"code": WINDOW_CLOSED, "reason": "24-hour window closed"})
        return
    try:
        provider_id = await graph.send_template(_recipient(event), name, res.settings.template_language,
                                                tag=event.outbound_id)
    except GraphPermanentError as exc:
        await _fail(res, outbound_id, {"code": exc.code, "message": str(exc), "template": name})
        return
    async with res.pool.connection() as conn:
        await messages.record_part_sent(conn, event.provider, outbound_id, 0, provider_id)
        await messages.mark_sent(conn, outbound_id)
        await conn.execute("UPDATE messages SET payload = payload || %s WHERE outbound_id = %s",
                           (json.dumps({"sent_as_template": name}), outbound_id))


async def _permanent_failure(res: Resources, graph: GraphClient | None, event: OutboundMessage,
                             outbound_id: uuid.UUID, exc: GraphPermanentError) -> None:
    if exc.code == WINDOW_CLOSED:  # Meta's clock says the window closed: fall back to the template
        await _send_template(res, graph, event, outbound_id)
        return
    if exc.code in UNREACHABLE_CODES:
        async with res.pool.connection() as conn:
            await messages.mark_unreachable(conn, outbound_id, f"{exc.code}: {exc}")
    log.warning("send %s failed for good: %s", event.outbound_id, exc)
    await _fail(res, outbound_id, {"code": exc.code, "message": str(exc)})


async def _fail(res: Resources, outbound_id: uuid.UUID, error: dict[str, object]) -> None:
    async with res.pool.connection() as conn:
        await messages.mark_failed(conn, outbound_id, error)


async def _alert(res: Resources, code: int | None, message: str) -> None:
    """An operator alert: logged loudly and kept in Redis for `charla status`."""
    log.critical("%s (code %s)", message, code)
    await res.redis.hset(c.ALERTS_KEY, str(code), json.dumps({"message": message, "at": time.time()}))
