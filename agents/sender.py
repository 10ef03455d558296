"""The sender agent: the only place messages leave Charla. Idempotent per outbound id.

Long replies go out in parts (charla.channels.chunking), each recorded as it is accepted so a redelivery resumes
after the last one. Choices go out as Meta's interactive buttons or lists, as Twilio content created once
per set of choices (charla.channels.twilio.content), else as numbered text. Outside the 24-hour window only the
configured re-engagement template is sent; no free-form attempt is made. Provider errors are typed:
transient ones are retried with backoff by the bus, permanent ones are recorded on the message (and mark the
learner unreachable when that is the reason).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from charla.channels import media
from charla.channels.chunking import split_text
from charla.channels.console import console_channel
from charla.channels.meta import graph as meta
from charla.channels.meta.graph import GraphAuthError, GraphClient
from charla.channels.registry import Channels, open_channels
from charla.channels.twilio import api as twilio
from charla.channels.twilio import content as twilio_content
from charla.channels.twilio.api import TwilioAuthError, TwilioChannel, TwilioPermanentError, TwilioTransientError
from charla.channels.twilio.content import Buttons
from charla.core import alerts
from charla.core.bus import Delivery
from charla.core.errors import PermanentError
from charla.core.events import Choice, OutboundMessage
from charla.core.runtime import Resources
from charla.core.worker import Handler
from charla.ops import export
from charla.store import messages
from charla.tutor import flashcards

log = logging.getLogger(__name__)

WINDOW_CLOSED_CODES = {meta.WINDOW_CLOSED, twilio.WINDOW_CLOSED}
UNREACHABLE_CODES = meta.UNREACHABLE_CODES | twilio.UNREACHABLE_CODES


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
    if event.kind == "voice":
        await _send_voice(res, channels, event, outbound_id, state.window_open)
        return
    if event.kind == "document":
        await _send_document(res, channels, event, outbound_id, state.window_open)
        return
    if event.kind == "template" or (event.provider != "console" and not state.window_open):
        await _send_template(res, channels, event, outbound_id)
        return
    buttons = await _twilio_buttons(res, channels, event)
    parts = message_parts(event, res.settings.text_limit(event.provider), buttons=buttons is not None)
    for index in range(state.parts_sent, len(parts)):
        last = index == len(parts) - 1
        try:
            provider_id = await _deliver(res, channels, event, parts[index], event.reply_to if index == 0 else None,
                                         with_choices=last and event.kind == "choices", buttons=buttons)
        except (GraphAuthError, TwilioAuthError) as exc:
            await alerts.credentials_rejected(res.redis, event.provider, exc.code, exc)
            raise
        except PermanentError as exc:
            await _permanent_failure(res, channels, event, outbound_id, exc)
            return
        async with res.pool.connection() as conn, conn.pipeline():  # one round trip for the bookkeeping
            await messages.record_part_sent(conn, event.provider, outbound_id, index, provider_id)
            if last:
                await messages.mark_sent(conn, outbound_id)


def message_parts(event: OutboundMessage, limit: int, *, buttons: bool = False) -> list[str]:
    """The texts to send in order. With choices, the last part becomes the body of the interactive
    message (at most 1024 characters on Meta; on Twilio, with `buttons`, one line: see
    twilio_content.body_parts) or carries the numbered options (elsewhere)."""
    if event.kind != "choices":
        return split_text(event.text, limit)
    if event.provider == "meta":
        return split_text(event.text, min(limit, meta.INTERACTIVE_BODY)) or [" "]
    if buttons:
        return twilio_content.body_parts(event.text, limit) or [event.choices_button]
    return split_text(f"{event.text}\n\n{numbered(event.choices)}", limit)


def numbered(choices: list[Choice]) -> str:
    """Options as text, answered by number: where buttons are not possible (Twilio, for choices its content
    cannot carry) and as the text version of Twilio's buttons."""
    return "\n".join(f"{n}. {choice.title}" for n, choice in enumerate(choices, 1))


async def _twilio_buttons(res: Resources, channels: Channels, event: OutboundMessage) -> Buttons | None:
    """Twilio content carrying the choices (created once per set of choices), or None for numbered text."""
    if event.kind != "choices" or event.provider != "twilio" or channels.twilio is None:
        return None
    try:
        return await twilio_content.buttons(res.redis, channels.twilio, event.choices, event.choices_button,
                                            numbered(event.choices))
    except TwilioAuthError as exc:
        await alerts.credentials_rejected(res.redis, "twilio", exc.code, exc)
        raise


async def _deliver(res: Resources, channels: Channels, event: OutboundMessage, text: str,
                   reply_to: str | None, *, with_choices: bool = False, buttons: Buttons | None = None) -> str:
    if event.provider == "meta" and channels.graph is not None:
        to, tag = _meta_recipient(event), event.outbound_id
        if event.flashcard is not None and len(text) <= meta.CAPTION_LIMIT:
            card = event.flashcard
            media_id = await channels.graph.upload(flashcards.render(card.word, card.translation, card.example),
                                                   "image/png", "flashcard.png")
            return await channels.graph.send_image(to, media_id, caption=text, tag=tag)
        if with_choices:
            return await _send_choices(channels.graph, to, text, event, tag)
        return await channels.graph.send_text(to, text, reply_to=reply_to, tag=tag)
    if event.provider == "twilio" and channels.twilio is not None:
        if with_choices and buttons is not None:
            return await _send_content(res, channels.twilio, _twilio_recipient(event), text, buttons, event.via)
        return await channels.twilio.send_text(_twilio_recipient(event), text, sender=event.via)
    if event.provider == "console":
        provider_id = f"console.{event.outbound_id}.{uuid.uuid4().hex[:8]}"
        # The console's copy carries the provider message id as its event id: the page's statuses quote it.
        part = event.model_copy(update={"id": provider_id, "text": text,
                                        "choices": event.choices if with_choices else []})
        await res.redis.publish(console_channel(event.learner), part.model_dump_json())
        return provider_id
    raise PermanentError(f"no credentials to send through {event.provider!r}")


async def _send_choices(graph: GraphClient, to: str, body: str, event: OutboundMessage, tag: str) -> str:
    choices = event.choices
    if len(choices) <= meta.MAX_BUTTONS and all(len(c.title) <= meta.BUTTON_TITLE and not c.description
                                                for c in choices):
        return await graph.send_buttons(to, body, [(c.id, c.title) for c in choices], tag=tag)
    rows = [(c.id, c.title, c.description) for c in choices]
    return await graph.send_list(to, body, event.choices_button, rows, tag=tag)


async def _send_content(res: Resources, channel: TwilioChannel, to: str, body: str, buttons: Buttons,
                        sender: str | None) -> str:
    try:
        return await channel.send_content(to, buttons.sid, {"1": body}, sender=sender)
    except TwilioPermanentError as exc:
        if exc.code not in twilio.CONTENT_GONE_CODES:
            raise
        await twilio_content.forget(res.redis, buttons.types)  # deleted at Twilio: the retry creates it again
        raise TwilioTransientError(exc.status, exc.code, f"content {buttons.sid} is gone: {exc}") from exc


def _meta_recipient(event: OutboundMessage) -> str:
    to = event.to.wa_id or event.to.user_id
    if not to:
        raise PermanentError(f"outbound {event.outbound_id} has no WhatsApp recipient")
    return to


def _twilio_recipient(event: OutboundMessage) -> str:
    if event.to.twilio:
        return event.to.twilio
    if event.to.wa_id:
        return f"whatsapp:+{event.to.wa_id.lstrip('+')}"
    raise PermanentError(f"outbound {event.outbound_id} has no Twilio recipient")


async def _send_voice(res: Resources, channels: Channels, event: OutboundMessage, outbound_id: uuid.UUID,
                      window_open: bool) -> None:
    """A spoken example: uploaded to Meta, fetched by Twilio from CHARLA_PUBLIC_URL, shown by the console.
    It only ever follows a text reply, so outside the window (no template can carry it) it is dropped."""
    if event.provider != "console" and not window_open:
        await _fail(res, outbound_id, {"reason": "24-hour window closed; the voice note follows a text reply"})
        return
    audio = await media.kept(res.redis, f"out:{event.audio}") if event.audio else None
    if audio is None:
        await _fail(res, outbound_id, {"reason": "the voice note's audio expired before it was sent"})
        return

    async def meta_send(graph: GraphClient) -> str:
        media_id = await graph.upload_voice(audio)
        return await graph.send_voice(_meta_recipient(event), media_id, tag=event.outbound_id)

    async def twilio_send(channel: TwilioChannel) -> str:
        url = _served(res, f"{event.audio}.ogg", "voice notes")
        return await channel.send_media(_twilio_recipient(event), url, sender=event.via)

    await _send_one(res, channels, event, outbound_id, meta_send, twilio_send)


async def _send_document(res: Resources, channels: Channels, event: OutboundMessage, outbound_id: uuid.UUID,
                         window_open: bool) -> None:
    """A learner's data export (charla.ops.export) as a file: uploaded to Meta, fetched by Twilio from
    CHARLA_PUBLIC_URL/media/<token>.json, a download link in the console. Only its token travels on the bus
    and its bytes are never logged. It answers the learner's own request, so outside the window it is not sent."""
    if event.provider != "console" and not window_open:
        await _fail(res, outbound_id, {"reason": "24-hour window closed; the export is sent only as an answer"})
        return
    token = f"doc:{event.document}"
    data = await media.kept(res.redis, token) if event.document else None
    if data is None:
        await _fail(res, outbound_id, {"reason": "the export expired before it was sent (CHARLA_EXPORT_TTL_S)"})
        return

    async def meta_send(graph: GraphClient) -> str:
        media_id = await graph.upload(data, export.UPLOAD_TYPE, export.FILENAME)
        return await graph.send_document(_meta_recipient(event), media_id, export.FILENAME, caption=event.text,
                                         tag=event.outbound_id)

    async def twilio_send(channel: TwilioChannel) -> str:
        url = _served(res, f"{event.document}.json", "data exports")
        return await channel.send_media(_twilio_recipient(event), url, body=event.text, sender=event.via)

    if await _send_one(res, channels, event, outbound_id, meta_send, twilio_send) and event.provider == "meta":
        await media.drop(res.redis, token)  # Meta keeps its own copy: nothing needs to fetch it from Charla


def _served(res: Resources, name: str, what: str) -> str:
    """The public URL of media Charla serves at /media/`name` (Twilio fetches it from there)."""
    if not res.settings.public_url:
        raise PermanentError(f"CHARLA_PUBLIC_URL is not set: Twilio cannot fetch {what} from Charla")
    return f"{res.settings.public_url.rstrip('/')}/media/{name}"


async def _send_one(res: Resources, channels: Channels, event: OutboundMessage, outbound_id: uuid.UUID,
                    meta_send: Callable[[GraphClient], Awaitable[str]],
                    twilio_send: Callable[[TwilioChannel], Awaitable[str]]) -> bool:
    """Send a message that goes out as one provider message (media), record it, and say whether it went."""
    try:
        if event.provider == "meta" and channels.graph is not None:
            provider_id = await meta_send(channels.graph)
        elif event.provider == "twilio" and channels.twilio is not None:
            provider_id = await twilio_send(channels.twilio)
        elif event.provider == "console":
            await _console_part(res, event, outbound_id)
            return True
        else:
            raise PermanentError(f"no credentials to send through {event.provider!r}")
    except (GraphAuthError, TwilioAuthError) as exc:
        await alerts.credentials_rejected(res.redis, event.provider, exc.code, exc)
        raise
    except PermanentError as exc:
        await _fail(res, outbound_id, {"code": getattr(exc, "code", None), "message": str(exc)})
        return False
    await _sent_whole(res, event, outbound_id, provider_id)
    return True


async def _send_template(res: Resources, channels: Channels, event: OutboundMessage, outbound_id: uuid.UUID) -> None:
    """Outside the 24-hour window: the message's own template (a practice prompt's), else the re-engagement
    template, instead of the free-form text."""
    template = event.template
    name = template.name if template else res.settings.reengage_template
    if event.provider == "console":  # the local console has no templates: it shows the text
        await _console_part(res, event, outbound_id)
        return
    if not name:
        await alerts.alert(res.redis, meta.WINDOW_CLOSED, "a reply waited past the 24-hour window and no "
                                                          "WHATSAPP_REENGAGE_TEMPLATE is configured")
        await _fail(res, outbound_id, {"reason": "24-hour window closed", "code": meta.WINDOW_CLOSED})
        return
    try:
        if event.provider == "twilio" and channels.twilio is not None:
            provider_id = await channels.twilio.send_template(_twilio_recipient(event), name, sender=event.via)
        elif channels.graph is not None:
            provider_id = await channels.graph.send_template(
                _meta_recipient(event), name, template.language if template else res.settings.template_language,
                body_params=template.body_params if template else None,
                button_payload=template.button_payload if template else None, tag=event.outbound_id)
        else:
            raise PermanentError(f"no credentials to send through {event.provider!r}")
    except PermanentError as exc:
        await _fail(res, outbound_id, {"code": getattr(exc, "code", None), "message": str(exc), "template": name})
        return
    await _sent_whole(res, event, outbound_id, provider_id, template=name)


async def _console_part(res: Resources, event: OutboundMessage, outbound_id: uuid.UUID) -> None:
    shown = event.model_copy(update={"kind": event.kind if event.kind in ("voice", "document") else "text"})
    provider_id = await _deliver(res, Channels(None, None), shown, event.text, None)
    await _sent_whole(res, event, outbound_id, provider_id)


async def _sent_whole(res: Resources, event: OutboundMessage, outbound_id: uuid.UUID, provider_id: str, *,
                      template: str | None = None) -> None:
    """Record a message that went out as one provider message (a template, a voice note, a console part)."""
    async with res.pool.connection() as conn, conn.pipeline():
        await messages.record_part_sent(conn, event.provider, outbound_id, 0, provider_id)
        await messages.mark_sent(conn, outbound_id)
        if template is not None:
            await messages.note_template(conn, outbound_id, template)


async def _permanent_failure(res: Resources, channels: Channels, event: OutboundMessage,
                             outbound_id: uuid.UUID, exc: PermanentError) -> None:
    code = getattr(exc, "code", None)
    if code in WINDOW_CLOSED_CODES:  # the provider's clock says the window closed: use the template
        await _send_template(res, channels, event, outbound_id)
        return
    if code in UNREACHABLE_CODES:
        async with res.pool.connection() as conn:
            await messages.mark_unreachable(conn, outbound_id, f"{code}: {exc}")
    log.warning("send %s failed for good: %s", event.outbound_id, exc)
    await _fail(res, outbound_id, {"code": code, "message": str(exc)})


async def _fail(res: Resources, outbound_id: uuid.UUID, error: dict[str, object]) -> None:
    async with res.pool.connection() as conn:
        await messages.mark_failed(conn, outbound_id, error)
