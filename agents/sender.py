"""The sender agent: the only place messages leave Charla. Idempotent per outbound id.

Every provider is a Channel (charla.channels.base) found by the message's provider name; this module decides
what goes out and records it, the channel decides how. Long replies go out in parts (the channel's `parts`),
each recorded as it is accepted so a redelivery resumes after the last one; the last part of a choices message
carries the choices (buttons, a list, or numbered text: the channel's choice). Outside the 24-hour window
(charla.core.window, read through messages.send_state) only a template is sent; no free-form attempt is made.
Provider errors are typed: transient ones are retried with backoff by the bus (rejected credentials also
alert an operator), permanent ones are recorded on the message (and mark the learner unreachable when that
is the reason).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import stamina

from charla.channels import media
from charla.channels.base import Channel, Document
from charla.channels.registry import Channels, open_channels
from charla.core import alerts
from charla.core.bus import Delivery
from charla.core.errors import AuthError, PermanentError, TransientError
from charla.core.events import OutboundMessage, Template
from charla.core.runtime import Resources
from charla.core.settings import Settings
from charla.core.worker import Handler
from charla.ops import export
from charla.store import messages
from charla.tutor import flashcards

log = logging.getLogger(__name__)

Send = Callable[[], Awaitable[str]]
RECORD_RETRY_S = 120.0  # how long a send the provider accepted waits for PostgreSQL to come back to be recorded
T = TypeVar("T")


class Unconfirmed(TransientError):
    """A send interrupted by a crash, not reported by the provider yet: asked again after `retry_after`."""

    def __init__(self, index: int, outbound_id: uuid.UUID, interrupted_s: float, wait: float) -> None:
        super().__init__(f"part {index} of {outbound_id} was interrupted {interrupted_s:.1f} s ago: waiting "
                         "for the provider's status before sending it again")
        self.retry_after = wait


def build(res: Resources) -> Handler:
    channels = open_channels(res)

    async def handle(delivery: Delivery) -> None:
        event = delivery.event()
        if not isinstance(event, OutboundMessage):
            raise PermanentError(f"sender cannot handle {event.type}")
        await send(res, channels, event)

    return handle


async def send(res: Resources, channels: Channels, event: OutboundMessage) -> None:
    """Send every part of `event` not sent yet, recording each as it goes."""
    outbound_id = uuid.UUID(event.outbound_id)
    async with res.pool.connection() as conn:
        state = await messages.send_state(conn, outbound_id)
    if state is None or state.status != "queued":
        return  # already sent (a redelivery), failed for good, or unknown to the log
    if state.unreachable:
        await _fail(res, outbound_id, {"reason": "learner unreachable"})
        return
    try:
        channel = channels.channel_for(event.provider)
    except PermanentError as exc:
        await _fail(res, outbound_id, {"code": None, "message": str(exc)})
        return
    window_closed = channel.traits.window and not state.window_open
    whole = event.kind not in ("text", "choices") or window_closed  # it goes out as one provider message
    parts_sent = state.parts_sent
    if state.interrupted_s is not None and channel.traits.confirms:
        provider_id = await _confirmed(res, event, outbound_id, state.parts_sent, state.interrupted_s)
        if provider_id is not None:
            await _record_sent(res, event, outbound_id, parts_sent, provider_id, last=whole)
            if whole:
                return
            parts_sent += 1
    if event.kind == "voice":
        await _send_voice(res, channel, event, outbound_id, window_closed)
    elif event.kind == "document":
        await _send_document(res, channel, event, outbound_id, window_closed)
    elif event.kind == "image":
        await _send_image(res, channel, event, outbound_id, window_closed)
    elif event.kind == "template" or window_closed:
        await _send_template(res, channel, event, outbound_id)
    else:
        await _send_parts(res, channel, event, outbound_id, parts_sent)


async def _confirmed(res: Resources, event: OutboundMessage, outbound_id: uuid.UUID, index: int,
                     interrupted_s: float) -> str | None:
    """The provider id of part `index` when the provider did accept it before a crash interrupted its send
    (its status names the outbound id). Until CHARLA_SEND_CONFIRM_S after the send began, no status yet
    means "ask again later" (the bus retries); after that, it was never accepted: None, send it again."""
    async with res.pool.connection() as conn:
        provider_id = await messages.unrecorded_status(conn, event.provider, outbound_id)
    wait = res.settings.send_confirm_s - interrupted_s
    if provider_id is None and wait > 0:
        raise Unconfirmed(index, outbound_id, interrupted_s, wait)
    if provider_id is None:
        log.warning("sending part %d of %s again: its send was interrupted and the provider never reported it",
                    index, outbound_id)
    return provider_id


async def _send_parts(res: Resources, channel: Channel, event: OutboundMessage, outbound_id: uuid.UUID,
                      parts_sent: int) -> None:
    parts = await _guarded(res, channel, lambda: channel.parts(event))
    if parts_sent >= len(parts):  # the last part was confirmed after an interrupted send
        await _record_sent(res, event, outbound_id, len(parts) - 1, None, last=True)
        return
    for index in range(parts_sent, len(parts)):
        last = index == len(parts) - 1
        try:
            provider_id = await _attempt(res, channel, outbound_id, index,
                                         _part(channel, event, parts[index], index, last=last))
        except PermanentError as exc:
            await _permanent_failure(res, channel, event, outbound_id, exc)
            return
        await _record_sent(res, event, outbound_id, index, provider_id, last=last)


def _part(channel: Channel, event: OutboundMessage, text: str, index: int, *, last: bool) -> Send:
    """How one part goes out: with its flashcard as an image where the channel takes them and the part fits
    the caption, with the choices when it is the last of a choices message, else as text."""
    card = event.flashcard
    if card is not None and 0 < len(text) <= channel.limits.caption:
        return lambda: channel.send_image(event, flashcards.render(card.word, card.translation, card.example), text)
    if last and event.kind == "choices":
        return lambda: channel.send_choices(event, text, reply_to=event.reply_to if index == 0 else None)
    return lambda: channel.send_text(event, text, reply_to=event.reply_to if index == 0 else None)


async def _attempt(res: Resources, channel: Channel, outbound_id: uuid.UUID, index: int, send: Send) -> str:
    """Send part `index`, first noting that its send began where the provider's statuses can confirm it (so a
    crash after the provider accepts it is found out, not repeated); an answered error clears the note."""
    if not channel.traits.confirms:
        return await _guarded(res, channel, send)
    async with res.pool.connection() as conn:
        await messages.note_sending(conn, outbound_id, index)
    try:
        return await _guarded(res, channel, send)
    except Exception:
        with contextlib.suppress(psycopg.Error):
            async with res.pool.connection() as conn:
                await messages.note_sending(conn, outbound_id, None)
        raise


async def _guarded(res: Resources, channel: Channel, call: Callable[[], Awaitable[T]]) -> T:
    """`call`, alerting an operator when the provider rejects Charla's credentials (the bus retries)."""
    try:
        return await call()
    except AuthError as exc:
        await alerts.credentials_rejected(res.redis, channel.traits.provider, exc.code, exc)
        raise


async def _send_voice(res: Resources, channel: Channel, event: OutboundMessage, outbound_id: uuid.UUID,
                      window_closed: bool) -> None:
    """A spoken example: uploaded to Meta, fetched by Twilio from CHARLA_PUBLIC_URL, shown by the console.
    It only ever follows a text reply, so outside the window (no template can carry it) it is dropped."""
    if window_closed:
        await _fail(res, outbound_id, {"reason": "24-hour window closed; the voice note follows a text reply"})
        return
    audio = await media.kept(res.redis, f"out:{event.audio}") if event.audio else None
    if audio is None:
        await _fail(res, outbound_id, {"reason": "the voice note's audio expired before it was sent"})
        return
    await _send_whole(res, channel, event, outbound_id, lambda: channel.send_voice(event, audio))


async def _send_document(res: Resources, channel: Channel, event: OutboundMessage, outbound_id: uuid.UUID,
                         window_closed: bool) -> None:
    """A file for the learner (their data export, their wordbook) as a document: uploaded to Meta, fetched by
    Twilio from CHARLA_PUBLIC_URL/media/<token>.<extension>, a download link in the console. Only its token
    travels on the bus and its bytes are never logged. It answers the learner's own request, so outside the
    window it is not sent."""
    if window_closed:
        await _fail(res, outbound_id, {"reason": "24-hour window closed; the export is sent only as an answer"})
        return
    token = f"doc:{event.document}"
    data = await media.kept(res.redis, token) if event.document else None
    if data is None:
        await _fail(res, outbound_id, {"reason": "the export expired before it was sent (CHARLA_EXPORT_TTL_S)"})
        return
    document = Document(data, event.filename or export.FILENAME, export.UPLOAD_TYPE)
    sent = await _send_whole(res, channel, event, outbound_id, lambda: channel.send_document(event, document))
    if sent and channel.traits.keeps_media:
        await media.drop(res.redis, token)  # the provider keeps its own copy: nothing needs to fetch it from Charla


async def _send_image(res: Resources, channel: Channel, event: OutboundMessage, outbound_id: uuid.UUID,
                      window_closed: bool) -> None:
    """A PNG (the progress chart) with `text` as its caption: uploaded to Meta, fetched by Twilio from
    CHARLA_PUBLIC_URL/media/<token>.png, shown by the console. Outside the window it is not sent (no template
    carries it: a report due then waits for the learner's next message instead)."""
    if window_closed:
        await _fail(res, outbound_id, {"reason": "24-hour window closed; images are sent only inside it"})
        return
    token = f"img:{event.image}"
    data = await media.kept(res.redis, token) if event.image else None
    if data is None:
        await _fail(res, outbound_id, {"reason": "the image expired before it was sent"})
        return
    sent = await _send_whole(res, channel, event, outbound_id, lambda: channel.send_image(event, data, event.text))
    if sent and channel.traits.keeps_media:
        await media.drop(res.redis, token)


async def _send_template(res: Resources, channel: Channel, event: OutboundMessage, outbound_id: uuid.UUID) -> None:
    """Outside the 24-hour window: the message's own template (a practice prompt's), else the re-engagement
    template, instead of the free-form text."""
    if not channel.traits.window:  # a channel without the window has no templates either: it shows the text
        await _send_whole(res, channel, event, outbound_id, lambda: channel.send_text(event, event.text))
        return
    template = event.template or _reengagement(res.settings)
    if template is None:
        code = min(channel.traits.window_closed, default=None)
        await alerts.alert(res.redis, code, "a reply waited past the 24-hour window and no "
                                            "WHATSAPP_REENGAGE_TEMPLATE is configured")
        await _fail(res, outbound_id, {"reason": "24-hour window closed", "code": code})
        return
    await _send_whole(res, channel, event, outbound_id, lambda: channel.send_template(event, template),
                      template=template.name)


def _reengagement(settings: Settings) -> Template | None:
    name = settings.reengage_template
    return Template(name=name, language=settings.template_language) if name else None


async def _send_whole(res: Resources, channel: Channel, event: OutboundMessage, outbound_id: uuid.UUID, send: Send,
                      *, template: str | None = None) -> bool:
    """Send a message that goes out as one provider message, record it, and say whether it went."""
    try:
        provider_id = await _attempt(res, channel, outbound_id, 0, send)
    except PermanentError as exc:
        error: dict[str, object] = {"code": getattr(exc, "code", None), "message": str(exc)}
        await _fail(res, outbound_id, error if template is None else {**error, "template": template})
        return False
    await _record_sent(res, event, outbound_id, 0, provider_id, last=True, template=template)
    return True


async def _record_sent(res: Resources, event: OutboundMessage, outbound_id: uuid.UUID, index: int,
                       provider_id: str | None, *, last: bool, template: str | None = None) -> None:
    """Record that the provider accepted part `index` (None: recorded already), in one round trip. The message
    is already on its way: a failure here would have the bus send it again, so a PostgreSQL restart
    (OperationalError: the pool's connections died with the server) is waited out here, up to RECORD_RETRY_S."""
    async for attempt in stamina.retry_context(on=psycopg.OperationalError, attempts=None, timeout=RECORD_RETRY_S,
                                               wait_max=2.0):
        with attempt:
            async with res.pool.connection() as conn, conn.pipeline():
                if provider_id is not None:
                    await messages.record_part_sent(conn, event.provider, outbound_id, index, provider_id)
                if last:
                    await messages.mark_sent(conn, outbound_id)
                if template is not None:
                    await messages.note_template(conn, outbound_id, template)


async def _permanent_failure(res: Resources, channel: Channel, event: OutboundMessage,
                             outbound_id: uuid.UUID, exc: PermanentError) -> None:
    code = getattr(exc, "code", None)
    if code in channel.traits.window_closed:  # the provider's clock says the window closed: use the template
        await _send_template(res, channel, event, outbound_id)
        return
    if code in channel.traits.unreachable:
        async with res.pool.connection() as conn:
            await messages.mark_unreachable(conn, outbound_id, f"{code}: {exc}")
    log.warning("send %s failed for good: %s", event.outbound_id, exc)
    await _fail(res, outbound_id, {"code": code, "message": str(exc)})


async def _fail(res: Resources, outbound_id: uuid.UUID, error: dict[str, object]) -> None:
    async with res.pool.connection() as conn:
        await messages.mark_failed(conn, outbound_id, error)
