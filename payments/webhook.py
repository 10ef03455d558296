"""`POST /webhooks/stripe`: verify the signature with the stripe library (300 s tolerance), publish, 200.

A bad or stale signature answers 400 and publishes nothing. Each event id is published once however often
Stripe delivers it (the bus dedupe key), and applied once (the payment agent's durable record).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import stripe
from fastapi.responses import JSONResponse, Response

from charla.core import constants as c
from charla.core.bus import BacklogFull
from charla.core.events import MAX_DEPTH, StripeEvent, deeper_than, without_nul
from charla.core.runtime import Resources
from payments.ledger import subscription_of

log = logging.getLogger(__name__)
TOLERANCE_S = 300


def parse(body: bytes, header: str | None, secret: str, tolerance: int | None = TOLERANCE_S) -> StripeEvent:
    """The verified event; raises stripe.SignatureVerificationError or ValueError (not an event)."""
    if header is not None and not header.isascii():  # the library's compare_digest raises TypeError on it:
        header = header.encode("ascii", "replace").decode()  # made ASCII, it simply fails to match
    stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
    data: Any = orjson.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise ValueError("not a Stripe event")
    if deeper_than(data):
        raise ValueError(f"not a Stripe event: nested deeper than {MAX_DEPTH} levels")
    if b"\\u0000" in body:  # PostgreSQL's JSONB refuses NUL characters
        data = without_nul(data)
    created = data.get("created") or 0
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created < 2**63:  # a bigint column
        raise ValueError("not a Stripe event: `created` is not a unix time")
    obj = _dict(_dict(data.get("data")).get("object"))
    event = StripeEvent(learner="stripe:pending", stripe_id=data["id"], stripe_type=data["type"],
                        created=created, payload=obj)
    key = subscription_of(event) or obj.get("customer") or obj.get("id") or data["id"]
    return event.model_copy(update={"learner": f"stripe:{key}"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def receive(res: Resources, body: bytes, signature: str | None) -> Response:
    """An event's raw bytes and `Stripe-Signature` header (the console's simulated checkouts come here too)."""
    secret = res.settings.stripe_signing_secret()
    if secret is None:
        return JSONResponse({"error": "Stripe is not configured (STRIPE_WEBHOOK_SECRET)"}, status_code=404)
    try:
        event = parse(body, signature, secret)
    except stripe.SignatureVerificationError as exc:
        log.warning("stripe webhook refused: %s", exc)
        return JSONResponse({"error": "invalid or stale Stripe-Signature"}, status_code=400)
    except (ValueError, orjson.JSONDecodeError):
        return JSONResponse({"error": "body is not a Stripe event"}, status_code=400)
    try:
        published = await res.bus.publish(c.STREAM_PAYMENTS, event, dedupe_key=f"stripe:{event.stripe_id}")
    except BacklogFull:
        return JSONResponse({"error": "busy, retry later"}, status_code=503)
    return JSONResponse({"received": True, "duplicate": published is None})
