"""Meta WhatsApp Cloud API webhooks: signature check on raw bytes and a tolerant payload parser.

Every sub-object is optional; a delivery may batch several entries, changes, messages and statuses. What a
learner sent becomes an InboundMessage (its text, caption, chosen button or list row as `text`; a message
Meta could not read, or one of a readable kind without content, has kind "unsupported"; an edit has kind
"edit" with the new words, a deletion kind "revoke", each naming `original_id`); what WhatsApp itself
wrote (`type: system`) becomes a SystemNotice, marketing-preference changes PreferenceUpdate events; statuses
become DeliveryStatus events and value-level errors ProviderError events; template and account updates
PlatformNotice events for the operator.
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
    PlatformNotice,
    PreferenceUpdate,
    Provider,
    ProviderError,
    SystemNotice,
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
    if kind == "edit":
        edited = _edited(message)
        return message_text(_str(edited.get("type")) or "text", edited)
    return None


def _edited(message: dict[str, Any]) -> dict[str, Any]:
    """The new version of an edited message (Meta's edit webhook: `edit.message`, with its own `type`)."""
    return _dict(_dict(message.get("edit")).get("message"))


def original_id(kind: str, message: dict[str, Any]) -> str | None:
    """The message an edit or a deletion (`revoke`) is about: `<kind>.original_message_id`."""
    return _str(_dict(message.get(kind)).get("original_message_id")) if kind in ("edit", "revoke") else None


def choice_id(kind: str, message: dict[str, Any]) -> str | None:
    """The id of the button or list row chosen (routes the answer back to whatever asked)."""
    if kind == "interactive":
        interactive = _dict(message.get("interactive"))
        return _str((_dict(interactive.get("button_reply")) or _dict(interactive.get("list_reply"))).get("id"))
    if kind == "button":
        return _str(_dict(message.get("button")).get("payload"))
    return None


# Kinds that are nothing but their words: without them (or with message-level `errors`) nothing is readable.
_WORDS_ONLY = {"text", "interactive", "button", "edit"}


def _kind(message: dict[str, Any], text: str | None) -> str:
    """The message's kind, "unsupported" when Meta says it could not read it (message-level `errors`, e.g.
    131051) or when a kind made only of words came without any."""
    kind = _str(message.get("type")) or "unsupported"
    if _list(message.get("errors")) or (kind in _WORDS_ONLY and text is None):
        return "unsupported"
    return kind


def _messages(payload: Any) -> Iterator[tuple[dict[str, Any], str, Identity]]:
    """Every message of a delivery with its id and its sender's identity (entries without either skipped)."""
    for value in changes(payload):
        contacts = _list(value.get("contacts"))
        for message in map(_dict, _list(value.get("messages"))):
            message_id = _str(message.get("id"))
            identity = _identity(_str(message.get("from")), _str(message.get("from_user_id")), contacts)
            if message_id and identity is not None:
                yield message, message_id, identity


def inbound_messages(payload: Any, provider: Provider = "meta") -> Iterator[InboundMessage]:
    """The learner messages in a delivery (system notices are not theirs: see system_notices).

    `provider` is "console" when the local console posts Meta-format webhooks (replies then go back to it).
    """
    for message, message_id, identity in _messages(payload):
        if message.get("type") == "system":
            continue
        given = _str(message.get("type")) or "unsupported"
        text = message_text(given, message)
        kind = _kind(message, text)
        yield InboundMessage(
            id=f"{provider}:{message_id}", learner=identity.key(), provider=provider, message_id=message_id,
            identity=identity, kind=kind, text=text if kind != "unsupported" else None,
            context_id=_str(_dict(message.get("context")).get("id")), sent_at=_time(message.get("timestamp")),
            payload={"choice_id": choice_id(kind, message), "original_id": original_id(kind, message),
                     "message": message})


def _new_identity(notice: str, system: dict[str, Any]) -> Identity | None:
    """The ids a number or user-id change moved the learner to. The current reference names the new number
    `system.wa_id` (On-Premises and API v11 said `new_wa_id`) and, since 2026, the new business-scoped id
    `system.user_id` beside `previous_user_id`."""
    if notice not in ("user_changed_number", "customer_changed_number", "user_changed_user_id"):
        return None
    wa_id = (_str(system.get("wa_id")) or _str(system.get("new_wa_id"))) if notice != "user_changed_user_id" else None
    user_id = _str(system.get("user_id"))
    return Identity(wa_id=wa_id, user_id=user_id) if wa_id or user_id else None


def system_notices(payload: Any, provider: Provider = "meta") -> Iterator[SystemNotice]:
    """WhatsApp's own notices in the learner's chat (`type: system`, no `contacts`): a changed number or
    business-scoped id, a changed identity (reinstalled, new phone). Ordered under the learner's new identity
    when there is one, so they come before the messages the learner then sends from it."""
    for message, message_id, sender in _messages(payload):
        if message.get("type") != "system":
            continue
        system = _dict(message.get("system"))
        notice = _str(system.get("type")) or "unknown"
        new = _new_identity(notice, system)
        old = Identity(wa_id=sender.wa_id, user_id=_str(system.get("previous_user_id"))
                       or (sender.user_id if not new or sender.user_id != new.user_id else None))
        yield SystemNotice(id=f"{provider}:{message_id}", learner=(new or sender).key(), provider=provider,
                           message_id=message_id, notice=notice, identity=old if old.wa_id or old.user_id else sender,
                           new_identity=new, body=_str(system.get("body")) or "",
                           sent_at=_time(message.get("timestamp")))


def preferences(payload: Any, provider: Provider = "meta") -> Iterator[PreferenceUpdate]:
    """Marketing-message preference changes (`user_preferences` field: `value` stop or resume)."""
    for value in changes(payload):
        contacts = _list(value.get("contacts"))
        for pref in map(_dict, _list(value.get("user_preferences"))):
            identity = _identity(_str(pref.get("wa_id")), _str(pref.get("user_id")), contacts)
            choice, stamp = _str(pref.get("value")), _str(pref.get("timestamp")) or ""
            if identity is None or choice not in ("stop", "resume"):
                continue
            yield PreferenceUpdate(id=f"{provider}:pref:{identity.key()}:{choice}:{stamp}", learner=identity.key(),
                                   provider=provider, identity=identity, value=choice,
                                   category=_str(pref.get("category")) or "", occurred_at=_time(pref.get("timestamp")))


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


# The business-account fields an operator must hear about, and where each puts what happened.
_PLATFORM = {"message_template_status_update": "event", "message_template_quality_update": "new_quality_score",
             "template_category_update": "new_category", "account_update": "event"}


def platform_notices(payload: Any, provider: Provider = "meta") -> Iterator[PlatformNotice]:
    """Template status, quality and category updates and account updates (Meta's webhook references for
    message_template_status_update, message_template_quality_update, template_category_update and
    account_update: each change's `field` names it, its `value` says what happened)."""
    for entry in map(_dict, _list(_dict(payload).get("entry"))):
        for change in map(_dict, _list(entry.get("changes"))):
            topic, value = _str(change.get("field")) or "", _dict(change.get("value"))
            event = _str(value.get(_PLATFORM.get(topic, ""))) if topic in _PLATFORM else None
            if event is None:
                continue
            template = _str(value.get("message_template_name"))
            yield PlatformNotice(
                id=f"{provider}:{topic}:{_str(value.get('message_template_id')) or _str(entry.get('id'))}:{event}:"
                   f"{_str(entry.get('time')) or ''}", learner=SYSTEM_LEARNER, provider=provider, topic=topic,
                event=event, template=template, language=_str(value.get("message_template_language")), detail=value)


def calls(payload: Any, provider: Provider = "meta") -> Iterator[InboundMessage]:
    """A learner's call to the business number (Meta's Calling API `calls` webhook field: `calls[]` with
    `event: connect` and `direction: USER_INITIATED`), as kind "call". It carries no send time: a call does
    not open the 24-hour window, so it is answered only while the window is already open."""
    for value in changes(payload):
        contacts = _list(value.get("contacts"))
        for call in map(_dict, _list(value.get("calls"))):
            call_id = _str(call.get("id"))
            identity = _identity(_str(call.get("from")), _str(call.get("from_user_id")), contacts)
            if not call_id or identity is None or call.get("event") != "connect" \
                    or call.get("direction") not in (None, "USER_INITIATED"):
                continue
            yield InboundMessage(id=f"{provider}:{call_id}", learner=identity.key(), provider=provider,
                                 message_id=call_id, identity=identity, kind="call",
                                 payload={"call": {k: v for k, v in call.items() if k != "session"}})
