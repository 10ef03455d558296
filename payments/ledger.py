"""Stripe events into PostgreSQL: each event id takes effect once, in Stripe's order, never backwards.

An event is recorded in `stripe_events` in the same transaction as its effect, so a redelivery (or a
replay) finds it and does nothing. A status only changes when the event is newer than the one that set the
current status (`status_at`), so late deliveries cannot undo newer ones. Events about a subscription not
yet linked to a learner (they arrived before its checkout) are parked and applied when the checkout lands.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from charla.core import logs
from charla.core.events import StripeEvent
from charla.store.messages import Conn

log = logging.getLogger(__name__)

# Stripe subscription status -> Charla's; unpaid (retries exhausted) and the ended ones lose access.
SUBSCRIPTION_STATUS = {"active": "active", "trialing": "trial", "past_due": "past_due", "unpaid": "cancelled",
                       "canceled": "cancelled", "incomplete_expired": "cancelled", "paused": "cancelled"}
HANDLED = ("checkout.session.completed", "customer.subscription.deleted", "customer.subscription.updated",
           "invoice.payment_failed", "charge.refunded")


async def apply(conn: Conn, event: StripeEvent) -> set[uuid.UUID]:
    """Record and apply one event (inside a transaction); returns the learners whose entitlement changed.
    A duplicate changes nothing."""
    subscription = subscription_of(event)
    inserted = await (await conn.execute(
        """INSERT INTO stripe_events (id, type, created, subscription_id, state, payload)
           VALUES (%s, %s, %s, %s, 'applied', %s) ON CONFLICT (id) DO NOTHING RETURNING id""",
        (event.stripe_id, event.stripe_type, event.created, subscription, Jsonb(event.payload)))).fetchone()
    if inserted is None:
        log.info("stripe event %s already applied", event.stripe_id)
        return set()
    if event.stripe_type == "checkout.session.completed":
        return await _checkout(conn, event, subscription)
    if event.stripe_type == "charge.refunded":
        return await _refund(conn, event)
    if event.stripe_type in HANDLED and subscription:
        return await _subscription_change(conn, event, subscription)
    log.info("stripe event %s (%s) acknowledged, nothing to do", event.stripe_id, event.stripe_type)
    await _state(conn, event.stripe_id, "ignored")
    return set()


def subscription_of(event: StripeEvent) -> str | None:
    obj = event.payload
    if event.stripe_type.startswith("customer.subscription."):
        return _str(obj.get("id"))
    details = _dict(_dict(obj.get("parent")).get("subscription_details"))
    return _str(obj.get("subscription") or details.get("subscription"))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


async def _state(conn: Conn, stripe_id: str, state: str, learner_id: uuid.UUID | None = None) -> None:
    await conn.execute("UPDATE stripe_events SET state = %s, learner_id = COALESCE(%s, learner_id) WHERE id = %s",
                       (state, learner_id, stripe_id))


async def _checkout(conn: Conn, event: StripeEvent, subscription: str | None) -> set[uuid.UUID]:
    obj = event.payload
    learner_id = await resolve(conn, obj)
    if learner_id is None:
        log.error("checkout %s matches no learner (client_reference_id %r); recorded as unmatched",
                  obj.get("id"), logs.redact(str(obj.get("client_reference_id"))))
        await _state(conn, event.stripe_id, "unmatched")
        return set()
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        # Not paid yet (a delayed payment method): no premium until Stripe says it is paid.
        await _state(conn, event.stripe_id, "ignored", learner_id)
        return set()
    status = "trial" if obj.get("payment_status") == "no_payment_required" else "active"
    kind = "subscription" if obj.get("mode") == "subscription" else "one_off"
    await conn.execute(
        """INSERT INTO entitlements (learner_id, status, kind, stripe_customer, stripe_subscription, payment_intent,
                                     status_at, announced)
           VALUES (%s, %s, %s, %s, %s, %s, %s, false)
           ON CONFLICT (learner_id) DO UPDATE SET status = EXCLUDED.status, kind = EXCLUDED.kind,
               stripe_customer = EXCLUDED.stripe_customer, stripe_subscription = EXCLUDED.stripe_subscription,
               payment_intent = EXCLUDED.payment_intent, status_at = EXCLUDED.status_at, announced = false,
               cancel_at_period_end = false, updated_at = now()
           WHERE entitlements.status_at <= EXCLUDED.status_at""",
        (learner_id, status, kind, _str(obj.get("customer")), subscription, _str(obj.get("payment_intent")),
         event.created))
    await _payment(conn, learner_id, event, "checkout", "paid", obj.get("amount_total"))
    await _state(conn, event.stripe_id, "applied", learner_id)
    if subscription:
        await _unpark(conn, subscription)
    return {learner_id}


async def _subscription_change(conn: Conn, event: StripeEvent, subscription: str) -> set[uuid.UUID]:
    row = await (await conn.execute("SELECT learner_id FROM entitlements WHERE stripe_subscription = %s",
                                    (subscription,))).fetchone()
    if row is None:  # before its checkout: applied when the checkout links the subscription to a learner
        await _state(conn, event.stripe_id, "parked")
        return set()
    learner_id = uuid.UUID(str(row[0]))
    await _set_status(conn, learner_id, event)
    await _state(conn, event.stripe_id, "applied", learner_id)
    return {learner_id}


async def _set_status(conn: Conn, learner_id: uuid.UUID, event: StripeEvent) -> None:
    obj = event.payload
    if event.stripe_type == "customer.subscription.deleted":
        status: str | None = "cancelled"
    elif event.stripe_type == "invoice.payment_failed":
        status = "past_due"
    else:
        status = SUBSCRIPTION_STATUS.get(str(obj.get("status")))
    cancel_at_end = obj.get("cancel_at_period_end") if event.stripe_type.startswith("customer.subscription") else None
    await conn.execute(
        """UPDATE entitlements SET status = COALESCE(%s, status), status_at = %s,
                  cancel_at_period_end = COALESCE(%s, cancel_at_period_end), updated_at = now()
           WHERE learner_id = %s AND status_at <= %s""",
        (status, event.created, cancel_at_end, learner_id, event.created))


async def _unpark(conn: Conn, subscription: str) -> None:
    """Apply, in Stripe's order, the events that arrived before this subscription's checkout."""
    rows = await (await conn.execute(
        """SELECT id, type, created, payload FROM stripe_events WHERE state = 'parked' AND subscription_id = %s
           ORDER BY created""", (subscription,))).fetchall()
    for row in rows:
        parked = StripeEvent(learner=f"stripe:{subscription}", stripe_id=str(row[0]), stripe_type=str(row[1]),
                             created=int(str(row[2])), payload=row[3] if isinstance(row[3], dict) else {})
        await _subscription_change(conn, parked, subscription)


async def _refund(conn: Conn, event: StripeEvent) -> set[uuid.UUID]:
    obj = event.payload
    intent = _str(obj.get("payment_intent"))
    row = await (await conn.execute("SELECT learner_id FROM entitlements WHERE payment_intent = %s",
                                    (intent,))).fetchone() if intent else None
    if row is None:
        await _state(conn, event.stripe_id, "unmatched")
        return set()
    learner_id = uuid.UUID(str(row[0]))
    if obj.get("refunded") is False:  # a partial refund keeps access
        await _payment(conn, learner_id, event, "refund", "partial_refund", obj.get("amount_refunded"))
        await _state(conn, event.stripe_id, "applied", learner_id)
        return set()
    await conn.execute("UPDATE entitlements SET status = 'refunded', status_at = %s, updated_at = now() "
                       "WHERE learner_id = %s AND status_at <= %s", (event.created, learner_id, event.created))
    await _payment(conn, learner_id, event, "refund", "refunded", obj.get("amount_refunded"))
    await _state(conn, event.stripe_id, "applied", learner_id)
    return {learner_id}


async def _payment(conn: Conn, learner_id: uuid.UUID, event: StripeEvent, kind: str, status: str,
                   amount: Any) -> None:
    obj = event.payload
    await conn.execute(
        """INSERT INTO payments (learner_id, stripe_event_id, stripe_object_id, kind, status, amount_cents, currency,
                                 payload, stripe_event_created)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (stripe_event_id) DO NOTHING""",
        (learner_id, event.stripe_id, _str(obj.get("payment_intent")) or _str(obj.get("id")), kind, status,
         amount if isinstance(amount, int) else None, obj.get("currency"),
         Jsonb({"id": obj.get("id"), "mode": obj.get("mode")}), event.created))


async def resolve(conn: Conn, checkout: dict[str, Any]) -> uuid.UUID | None:
    """The learner a checkout belongs to: `client_reference_id` (Charla's id, or `wa_<number>`), else the
    phone number Stripe collected."""
    ref = str(checkout.get("client_reference_id") or "")
    candidates: list[tuple[str, str]] = []
    try:
        candidates.append(("id", str(uuid.UUID(hex=ref))))
    except ValueError:
        if ref.startswith("wa_"):
            candidates.append(("wa_id", ref.removeprefix("wa_")))
    phone = "".join(ch for ch in str((checkout.get("customer_details") or {}).get("phone") or "") if ch.isdigit())
    if phone:
        candidates += [("wa_id", phone), ("twilio_id", f"whatsapp:+{phone}")]
    for column, value in candidates:
        query = f"SELECT id FROM learners WHERE {column}::text = %s"  # noqa: S608 - fixed column names
        row = await (await conn.execute(query.encode(), (value,))).fetchone()
        if row is not None:
            return uuid.UUID(str(row[0]))
    return None
