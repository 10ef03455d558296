"""Meta WhatsApp Cloud API webhooks: signature check on raw bytes and a tolerant payload parser.

Every sub-object is optional; a delivery may batch several entries, changes, messages and statuses. What a
learner sent becomes an InboundMessage (its text, caption, chosen button or list row as `text`); statuses
become DeliveryStatus events and value-level errors ProviderError events.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from charla.core.events import (
    MAX_DEPTH,
    SYSTEM_LEARNER,
    DeliveryStatus,
    Identity,
    InboundMessage,
    Provider,
    ProviderError,
    deeper_than,
    without_nul,
)


class NotADelivery(ValueError):
    """JSON that cannot be a delivery: nested deeper than MAX_DEPTH (the bus could not encode its events)."""


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body, app secret)>`, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str, and headers are whatever was sent.
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower().encode(errors="replace"))


def load(body: bytes) -> Any:
    """A delivery's JSON, ready for the parsers, without NUL characters: PostgreSQL's text and JSONB refuse
    them, so one would fail the learner's turn until it was dead-lettered. Raises orjson.JSONDecodeError or
    NotADelivery."""
    payload = orjson.loads(body)
    # Byte counts first keep both walks off the hot path: no body with fewer brackets can nest deeper, and
    # JSON carries a NUL only as the escape \u0000.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and deeper_than(payload):
        raise NotADelivery(f"JSON nested deeper than {MAX_DEPTH} levels")
    return without_nul(payload) if b"\\u0000" in body else payload


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


def _time(value: Any) -> datetime | None:
    stamp = _str(value)
    if not stamp or not stamp.isascii() or not stamp.isdigit():  # "²".isdigit(), yet int("²") fails
        return None
    try:
        return datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError):  # past year 9999, or over the platform's time_t
        return None


def changes(payload: Any) -> Iterator[dict[str, Any]]:
    """Every `entry[].changes[].value` of a delivery."""
    for entry in _list(_dict(payload).get("entry")):
        for change in _list(_dict(entry).get("changes")):
            yield _dict(_dict(change).get("value"))


def _identity(wa_id: str | None, user_id: str | None, contacts: list[Any]) -> Identity | None:
    name = None
    for contact in map(_dict, contacts):
        if (wa_id and _str(contact.get("wa_id")) == wa_id) or (user_id and _str(contact.get("user_id")) == user_id):
            wa_id = wa_id or _str(contact.get("wa_id"))
            user_id = user_id or _str(contact.get("user_id"))
            name = _str(_dict(contact.get("profile")).get("name"))
    if not (wa_id or user_id):
        return None
    return Identity(wa_id=wa_id, user_id=user_id, name=name)


def message_text(kind: str, message: dict[str, Any]) -> str | None:
    """What the learner said, for the kinds that say something: text, caption, chosen button or row."""
    if kind == "text":
        return _str(_dict(message.get("text")).get("body"))
    if kind in ("image", "video", "document"):
        return _str(_dict(message.get(kind)).get("caption"))
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        choice = _dict(interactive.get("button_reply")) or _dict(interactive.get("list_reply"))
        return _str(choice.get("title"))
    if kind == "button":
        return _str(_dict(message.get("button")).get("text"))
    return None


def choice_id(kind: str, message: dict[str, Any]) -> str | None:
    """The id of the button or list row chosen (routes the answer back to whatever asked)."""
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        return _str((_dict(interactive.get("button_reply")) or _dict(interactive.get("list_reply"))).get("id"))
    if kind == "button":
        return _str(_dict(message.get("button")).get("payload"))
    return None


def inbound_messages(payload: Any, provider: Provider = "meta") -> Iterator[InboundMessage]:
    """The learner messages in a delivery; entries without a sender or an id are skipped.

    `provider` is "console" when the local console posts Meta-format webhooks (replies then go back to it).
    """
    for value in changes(payload):
        contacts = _list(value.get("contacts"))
        for message in map(_dict, _list(value.get("messages"))):
            message_id = _str(message.get("id"))
            identity = _identity(_str(message.get("from")), _str(message.get("from_user_id")), contacts)
            if not message_id or identity is None:
                continue
            kind = _str(message.get("type")) or "unsupported"
            yield InboundMessage(
                id=f"{provider}:{message_id}", learner=identity.key(), provider=provider, message_id=message_id,
                identity=identity, kind=kind, text=message_text(kind, message),
                context_id=_str(_dict(message.get("context")).get("id")), sent_at=_time(message.get("timestamp")),
                payload={"choice_id": choice_id(kind, message), "message": message})


def statuses(payload: Any, provider: Provider = "meta") -> Iterator[DeliveryStatus]:
    """Delivery statuses of our outbound messages."""
    for value in changes(payload):
        for status in map(_dict, _list(value.get("statuses"))):
            wamid, state = _str(status.get("id")), _str(status.get("status"))
            if not wamid or not state:
                continue
            recipient = Identity(wa_id=_str(status.get("recipient_id")), user_id=_str(status.get("recipient_user_id")))
            learner = recipient.key() if recipient.wa_id or recipient.user_id else SYSTEM_LEARNER
            yield DeliveryStatus(
                id=f"{provider}:{wamid}:{state}", learner=learner, provider=provider, provider_message_id=wamid,
                status=state, outbound_id=_str(status.get("biz_opaque_callback_data")),
                occurred_at=_time(status.get("timestamp")), errors=[_dict(e) for e in _list(status.get("errors"))])


def errors(payload: Any, provider: Provider = "meta") -> Iterator[ProviderError]:
    """Value-level errors (not tied to one message), e.g. 130429 rate limiting."""
    for value in changes(payload):
        for error in map(_dict, _list(value.get("errors"))):
            code = error.get("code")
            yield ProviderError(learner=SYSTEM_LEARNER, provider=provider,
                                code=code if isinstance(code, int) else None,
                                title=_str(error.get("title")) or _str(error.get("message")) or "", details=error)
