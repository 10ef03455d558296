"""The local console provider's inbound side: Meta-format deliveries, signed like the real ones.

The console (and `charla say`) post these to /webhooks/whatsapp, so local messages take exactly the
path WhatsApp's do; the sender publishes replies on `console_channel(learner)`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

from charla import constants as c


def console_channel(learner: str) -> str:
    """Pub/sub channel carrying one console learner's replies (JSON OutboundMessage)."""
    return f"{c.PREFIX}:console:{learner}"


def learner_key(handle: str) -> str:
    """The ordering key a console learner's messages carry (see events.Identity.key)."""
    return f"wa:{handle}"


def text_delivery(handle: str, text: str, *, name: str | None = None, message_id: str | None = None) -> bytes:
    """A `messages` webhook body with one text message from console learner `handle`."""
    message = {"from": handle, "id": message_id or f"wamid.console.{uuid.uuid4().hex}",
               "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    metadata = {"display_phone_number": "console", "phone_number_id": "console"}
    value = {"messaging_product": "whatsapp", "metadata": metadata,
             "contacts": [{"profile": {"name": name or handle}, "wa_id": handle}], "messages": [message]}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "console", "changes": [
        {"field": "messages", "value": value}]}]}
    return json.dumps(payload).encode()


def signature(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
