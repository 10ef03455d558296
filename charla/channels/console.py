"""The local console provider: Meta-format deliveries and Stripe-format events, signed like the real ones, and
ConsoleChannel, the Channel that shows Charla's messages on the console page.

The console page (and `charla say`) post these through the orchestrator's own webhook handlers, so local
messages take exactly the path WhatsApp's and Stripe's do; the sender publishes replies on
`console_channel(learner)`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from charla.channels import media
from charla.channels.base import Document, Limits, Traits, numbered_parts
from charla.channels.chunking import split_text
from charla.channels.meta import graph
from charla.channels.meta.channel import media_id
from charla.core import constants as c
from charla.core.events import InboundMessage, OutboundMessage, ReadReceipt, Template

TRAITS = Traits(provider="console", window=False, keeps_media=False, local=True, renumbers=True)  # Meta-shaped


def console_channel(learner: str) -> str:
    """Pub/sub channel carrying one console learner's replies and read receipts (JSON events)."""
    return f"{c.PREFIX}:console:{learner}"


class ConsoleChannel:
    """Publishes each message as a copy of its OutboundMessage on the learner's pub/sub channel; the copy's
    event id is the provider message id the page's statuses quote. No window, no templates (their text is
    shown), no uploads (the page fetches media from /media/), choices as numbered text plus buttons."""

    traits = TRAITS

    def __init__(self, redis: Redis, *, text_limit: int) -> None:
        self._redis = redis
        self.limits = Limits(text=text_limit)

    def recipient(self, message: OutboundMessage) -> str:
        return console_channel(message.learner)

    async def parts(self, message: OutboundMessage) -> list[str]:
        """The text alone where the page draws the choices (as buttons or a list, like WhatsApp's, which
        carry up to MAX_ROWS); numbered after the text past that."""
        if message.kind == "choices" and len(message.choices) <= graph.MAX_ROWS:
            return split_text(message.text, self.limits.text)
        return numbered_parts(message, self.limits.text)

    async def send_text(self, message: OutboundMessage, text: str, *, reply_to: str | None = None) -> str:
        return await self._publish(message, text)

    async def send_choices(self, message: OutboundMessage, body: str, *, reply_to: str | None = None) -> str:
        return await self._publish(message, body, with_choices=True)

    async def send_image(self, message: OutboundMessage, image: bytes, caption: str) -> str:
        return await self._publish(message, caption)  # the page draws `message.flashcard` itself

    async def send_voice(self, message: OutboundMessage, audio: bytes) -> str:
        return await self._publish(message, message.text)

    async def send_document(self, message: OutboundMessage, document: Document) -> str:
        return await self._publish(message, message.text)

    async def send_template(self, message: OutboundMessage, template: Template) -> str:
        return await self._publish(message, message.text)

    async def mark_read(self, learner: str, message_id: str, *, typing: bool = True) -> None:
        receipt = ReadReceipt(learner=learner, provider="console", message_id=message_id, typing=typing)
        await self._redis.publish(console_channel(learner), receipt.model_dump_json())

    async def download(self, message: InboundMessage, max_bytes: int) -> media.Media:
        found = media_id(message)
        data = await media.kept(self._redis, f"in:{found}")
        if data is None:
            raise media.MediaGone(f"console media {found}")
        return media.Media(data, "audio/ogg")

    async def _publish(self, message: OutboundMessage, text: str, *, with_choices: bool = False) -> str:
        provider_id = f"console.{message.outbound_id}.{uuid.uuid4().hex[:8]}"
        kind = "text" if message.kind == "template" else message.kind
        copy = message.model_copy(update={"id": provider_id, "text": text, "kind": kind,
                                          "choices": message.choices if with_choices else []})
        await self._redis.publish(self.recipient(message), copy.model_dump_json())
        return provider_id


def learner_key(handle: str) -> str:
    """The ordering key a console learner's messages carry (see events.Identity.key)."""
    return f"wa:{handle}"


def new_message_id() -> str:
    return f"wamid.console.{uuid.uuid4().hex}"


def _delivery(value: dict[str, Any]) -> bytes:
    metadata = {"display_phone_number": "console", "phone_number_id": "console"}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "console", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}]}]}
    return json.dumps(payload).encode()


def _message(handle: str, name: str | None, message: dict[str, Any]) -> bytes:
    message = {"from": handle, "id": message.pop("id", None) or new_message_id(),
               "timestamp": str(int(time.time())), **message}
    return _delivery({"contacts": [{"profile": {"name": name or handle}, "wa_id": handle}], "messages": [message]})


def text_delivery(handle: str, text: str, *, name: str | None = None, message_id: str | None = None) -> bytes:
    """A `messages` webhook body with one text message from console learner `handle`."""
    return _message(handle, name, {"id": message_id, "type": "text", "text": {"body": text}})


def audio_delivery(handle: str, media_id: str, mime_type: str, *, name: str | None = None,
                   message_id: str | None = None) -> bytes:
    """A voice note from `handle`; its bytes are kept under MEDIA_KEY `in:<media_id>` (see charla.channels.media)."""
    audio = {"id": media_id, "mime_type": mime_type, "voice": True}
    return _message(handle, name, {"id": message_id, "type": "audio", "audio": audio})


def choice_delivery(handle: str, choice_id: str, title: str, context_id: str | None, *, row: bool = False,
                    name: str | None = None, message_id: str | None = None) -> bytes:
    """A tapped reply button (or list row, with `row`) answering message `context_id`."""
    kind = "list_reply" if row else "button_reply"
    message: dict[str, Any] = {"id": message_id, "type": "interactive",
                               "interactive": {"type": kind, kind: {"id": choice_id, "title": title}}}
    if context_id:
        message["context"] = {"from": "console", "id": context_id}
    return _message(handle, name, message)


def status_delivery(handle: str, provider_message_id: str, status: str) -> bytes:
    """A delivery status ("delivered", "read", "played") of one of Charla's console messages."""
    return _delivery({"statuses": [{"id": provider_message_id, "status": status, "recipient_id": handle,
                                    "timestamp": str(int(time.time()))}]})


def checkout_completed(reference: str, *, amount_cents: int, currency: str, mode: str = "subscription") -> bytes:
    """A Stripe `checkout.session.completed` event for a paid Payment Link checkout by learner `reference`
    (their client_reference_id), as Stripe sends it."""
    now, tag = int(time.time()), uuid.uuid4().hex[:24]
    session = {"id": f"cs_console_{tag}", "object": "checkout.session", "mode": mode, "status": "complete",
               "payment_status": "paid", "client_reference_id": reference, "amount_total": amount_cents,
               "currency": currency, "customer": f"cus_console_{tag}", "payment_link": "plink_console",
               "subscription": f"sub_console_{tag}" if mode == "subscription" else None,
               "payment_intent": None if mode == "subscription" else f"pi_console_{tag}"}
    event = {"id": f"evt_console_{tag}", "object": "event", "type": "checkout.session.completed", "created": now,
             "livemode": False, "api_version": "2024-06-20", "data": {"object": session}}
    return json.dumps(event).encode()


def signature(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stripe_signature(body: bytes, secret: str, at: int | None = None) -> str:
    """The `Stripe-Signature` header for `body`, as Stripe computes it (HMAC-SHA256 over "<t>.<body>")."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"
