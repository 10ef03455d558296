"""The local console provider: Meta-format deliveries and Stripe-format events, signed like the real ones.

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

from charla.core import constants as c


def console_channel(learner: str) -> str:
    """Pub/sub channel carrying one console learner's replies and read receipts (JSON events)."""
    return f"{c.PREFIX}:console:{learner}"


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
