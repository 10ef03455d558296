"""Twilio WhatsApp webhooks: `X-Twilio-Signature` (twilio's own validator) and form parsing.

One URL takes both inbound messages and status callbacks: a status callback carries a `MessageStatus`
other than `received`. Signatures are computed over the public URL Twilio called, which behind a proxy
is CHARLA_PUBLIC_URL + the path, not what the app sees. A tap on a quick-reply button carries the button's
id in `ButtonPayload` (its title in `ButtonText`); a row picked from a list-picker, in `ListId` (`ListTitle`).
A status callback's URL carries the outbound id of the message it reports on (`?outbound=…`, set per send).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from twilio.request_validator import RequestValidator

from charla.core.events import SYSTEM_LEARNER, DeliveryStatus, Identity, InboundMessage

# Twilio's statuses that say something about delivery, as Charla's (never delivered = failed). `queued`
# and `sending` only say Twilio has not sent it yet: acknowledged, not recorded.
OUTBOUND_PARAM = "outbound"  # the status callback URL's query parameter naming Charla's outbound id
_AS_CHARLA = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "undelivered": "failed"}


def signature_ok(url: str, form: Mapping[str, str], signature: str | None, auth_token: str) -> bool:
    """Twilio's HMAC-SHA1 over the full URL and the sorted form fields, compared in constant time."""
    try:
        return bool(signature) and bool(RequestValidator(auth_token).validate(url, dict(form), signature))
    except ValueError:  # an unparseable URL ("https://host:abc/"): nothing Twilio could have signed
        return False


def _number(value: str | None) -> int | None:
    """A small non-negative decimal field; None when absent, too long or not plain ASCII (int("²") fails)."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 9 else None


def _without_nul(form: Mapping[str, str]) -> Mapping[str, str]:
    """`form` without NUL characters in its values (`%00`: PostgreSQL's text and JSONB refuse them)."""
    if not any("\x00" in value for value in form.values()):
        return form
    return {key: value.replace("\x00", "") for key, value in form.items()}


def _kind(form: Mapping[str, str]) -> str:
    if (_number(form.get("NumMedia")) or 0) > 0:
        media = (form.get("MediaContentType0") or "").split("/")[0]
        return {"audio": "audio", "image": "image", "video": "video"}.get(media, "document")
    if form.get("ButtonPayload"):
        return "button"
    return "interactive" if form.get("ListId") else (form.get("MessageType") or "text").lower()


def inbound_message(form: Mapping[str, str]) -> InboundMessage | None:
    """The learner message in an inbound webhook (None for a status callback or junk)."""
    form = _without_nul(form)
    sid, sender = form.get("MessageSid") or form.get("SmsMessageSid"), form.get("From")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "received").lower()
    if not sid or not sender or status != "received":
        return None
    identity = Identity(twilio=sender, wa_id=form.get("WaId") or None, name=form.get("ProfileName") or None)
    kind, choice = _kind(form), form.get("ButtonPayload") or form.get("ListId")
    text = form.get("ButtonText") or form.get("ListTitle") or form.get("Body")
    media = {"url": form.get("MediaUrl0"), "content_type": form.get("MediaContentType0")}
    return InboundMessage(id=f"twilio:{sid}", learner=identity.key(), provider="twilio", message_id=sid,
                          identity=identity, kind=kind, text=text or None,
                          context_id=form.get("OriginalRepliedMessageSid") or None, sent_at=datetime.now(UTC),
                          payload={"choice_id": choice or None, "to": form.get("To"),
                                   "media": media if media["url"] else None})


def delivery_status(form: Mapping[str, str], outbound_id: str | None = None) -> DeliveryStatus | None:
    """The status in a status callback (None for an inbound message); `outbound_id` from its URL."""
    form = _without_nul(form)
    sid, status = form.get("MessageSid"), (form.get("MessageStatus") or "").lower()
    if not sid or status not in _AS_CHARLA:
        return None
    recipient = form.get("To") or ""
    learner = Identity(twilio=recipient).key() if recipient else SYSTEM_LEARNER
    code = _number(form.get("ErrorCode"))
    errors = [{"code": code, "message": form.get("ErrorMessage", "")}] if code is not None else []
    return DeliveryStatus(id=f"twilio:{sid}:{status}", learner=learner, provider="twilio", provider_message_id=sid,
                          status=_AS_CHARLA[status], outbound_id=outbound_id, occurred_at=datetime.now(UTC),
                          errors=errors)
