"""Meta WhatsApp Cloud API webhooks: signature check on raw bytes and a tolerant payload parser."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from charla.events import Identity, InboundMessage, Provider


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body, app secret)>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and str(value) else None


def changes(payload: Any) -> Iterator[dict[str, Any]]:
    """Every `entry[].changes[].value` of a delivery (one POST may batch several)."""
    for entry in _list(_dict(payload).get("entry")):
        for change in _list(_dict(entry).get("changes")):
            yield _dict(_dict(change).get("value"))


def _sent_at(message: dict[str, Any]) -> datetime | None:
    stamp = _str(message.get("timestamp"))
    return datetime.fromtimestamp(int(stamp), UTC) if stamp and stamp.isdigit() else None


def _identity(message: dict[str, Any], contacts: list[Any]) -> Identity | None:
    wa_id, user_id = _str(message.get("from")), _str(message.get("from_user_id"))
    name = None
    for contact in map(_dict, contacts):
        if (wa_id and _str(contact.get("wa_id")) == wa_id) or (user_id and _str(contact.get("user_id")) == user_id):
            wa_id = wa_id or _str(contact.get("wa_id"))
            user_id = user_id or _str(contact.get("user_id"))
            name = _str(_dict(contact.get("profile")).get("name"))
    if not (wa_id or user_id):
        return None
    return Identity(wa_id=wa_id, user_id=user_id, name=name)


def inbound_messages(payload: Any, provider: Provider = "meta") -> Iterator[InboundMessage]:
    """The learner messages in a delivery; entries without a sender or an id are skipped.

    `provider` is "console" when the local console posts Meta-format webhooks (replies then go back to it).
    """
    for value in changes(payload):
        contacts = _list(value.get("contacts"))
        for message in map(_dict, _list(value.get("messages"))):
            message_id, identity = _str(message.get("id")), _identity(message, contacts)
            if not message_id or identity is None:
                continue
            kind = _str(message.get("type")) or "unsupported"
            yield InboundMessage(
                id=f"{provider}:{message_id}", learner=identity.key(), provider=provider, message_id=message_id,
                identity=identity, kind=kind, text=_str(_dict(message.get("text")).get("body")),
                context_id=_str(_dict(message.get("context")).get("id")), sent_at=_sent_at(message),
                payload=message)
