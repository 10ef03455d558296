"""Twilio WhatsApp webhooks: `X-Twilio-Signature` (twilio's own validator) and form parsing.

One URL takes both inbound messages and status callbacks: a status callback carries a `MessageStatus`
other than `received`. Signatures are computed over the public URL Twilio called, which behind a proxy
is CHARLA_PUBLIC_URL + the path, not what the app sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from twilio.request_validator import RequestValidator

from charla.events import SYSTEM_LEARNER, DeliveryStatus, Identity, InboundMessage

# Twilio's statuses that say something about delivery, as Charla's (never delivered = failed). `queued`
# and `sending` only say Twilio has not sent it yet: acknowledged, not recorded.
_AS_CHARLA = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed", "undelivered": "failed"}


def signature_ok(url: str, form: Mapping[str, str], signature: str | None, auth_token: str) -> bool:
    """Twilio's HMAC-SHA1 over the full URL and the sorted form fields, compared in constant time."""
    return bool(signature) and bool(RequestValidator(auth_token).validate(url, dict(form), signature))


def _kind(form: Mapping[str, str]) -> str:
    if int(form.get("NumMedia", "0") or 0) > 0:
        media = (form.get("MediaContentType0") or "").split("/")[0]
        return {"audio": "audio", "image": "image", "video": "video"}.get(media, "document")
    kind = (form.get("MessageType") or "text").lower()
    return "button" if form.get("ButtonPayload") else kind


def inbound_message(form: Mapping[str, str]) -> InboundMessage | None:
    """The learner message in an inbound webhook (None for a status callback or junk)."""
    sid, sender = form.get("MessageSid") or form.get("SmsMessageSid"), form.get("From")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "received").lower()
    if not sid or not sender or status != "received":
        return None
    identity = Identity(twilio=sender, wa_id=form.get("WaId") or None, name=form.get("ProfileName") or None)
    kind = _kind(form)
    text = form.get("ButtonText") if kind == "button" else form.get("Body")
    media = {"url": form.get("MediaUrl0"), "content_type": form.get("MediaContentType0")}
    return InboundMessage(id=f"twilio:{sid}", learner=identity.key(), provider="twilio", message_id=sid,
                          identity=identity, kind=kind, text=text or None,
                          context_id=form.get("OriginalRepliedMessageSid") or None, sent_at=datetime.now(UTC),
                          payload={"choice_id": form.get("ButtonPayload") or None, "to": form.get("To"),
                                   "media": media if media["url"] else None})


def delivery_status(form: Mapping[str, str]) -> DeliveryStatus | None:
    """The status in a status callback (None for an inbound message)."""
    sid, status = form.get("MessageSid"), (form.get("MessageStatus") or "").lower()
    if not sid or status not in _AS_CHARLA:
        return None
    recipient = form.get("To") or ""
    learner = Identity(twilio=recipient).key() if recipient else SYSTEM_LEARNER
    errors = [{"code": int(form["ErrorCode"]), "message": form.get("ErrorMessage", "")}] \
        if (form.get("ErrorCode") or "").isdigit() else []
    return DeliveryStatus(id=f"twilio:{sid}:{status}", learner=learner, provider="twilio", provider_message_id=sid,
                          status=_AS_CHARLA[status], occurred_at=datetime.now(UTC), errors=errors)
