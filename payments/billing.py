"""Cancel and resume: a subscription through Stripe's API (at period end), a one-off payment recorded only.

When Stripe cannot be reached nothing changes and the learner is told to try later: the entitlement only
ever follows what Stripe confirmed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import stripe
from psycopg_pool import AsyncConnectionPool

from charla.core.settings import Settings

log = logging.getLogger(__name__)

Outcome = Literal["free", "one_off", "subscription", "unavailable"]


@dataclass(frozen=True)
class Change:
    outcome: Outcome
    until: datetime | None = None  # the end of the paid period, when Stripe said


def open_client(settings: Settings) -> stripe.StripeClient | None:
    """Stripe's client on its aiohttp transport (STRIPE_API_BASE_URL: a local fake in tests)."""
    if settings.stripe_secret_key is None:
        return None
    return stripe.StripeClient(settings.stripe_secret_key.get_secret_value(),
                               base_addresses={"api": settings.stripe_api_base_url},
                               http_client=stripe.AIOHTTPClient(), max_network_retries=2)


async def renews(pool: AsyncConnectionPool, learner_id: uuid.UUID) -> bool:
    """Whether the learner pays through a live subscription (what cancelling would stop renewing)."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT 1 FROM entitlements WHERE learner_id = %s AND kind = 'subscription' "
            "AND stripe_subscription IS NOT NULL AND status IN ('trial', 'active', 'past_due')",
            (learner_id,))).fetchone()
    return row is not None


async def set_cancel(pool: AsyncConnectionPool, client: stripe.StripeClient | None, learner_id: uuid.UUID,
                     cancel: bool) -> Change:
    """Cancel at period end (`cancel`) or undo it; says what kind of plan it was."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT kind, stripe_subscription FROM entitlements WHERE learner_id = %s "
            "AND status IN ('trial', 'active', 'past_due')", (learner_id,))).fetchone()
    if row is None:
        return Change("free")
    kind, subscription = str(row[0]), row[1]
    until = None
    if kind == "subscription" and subscription:
        if client is None:
            return Change("unavailable")
        try:
            updated = await client.v1.subscriptions.update_async(str(subscription), {"cancel_at_period_end": cancel})
        except stripe.StripeError as exc:
            log.warning("Stripe could not %s subscription %s: %s", "cancel" if cancel else "resume", subscription, exc)
            return Change("unavailable")
        until = period_end(updated)
    async with pool.connection() as conn:
        await conn.execute("UPDATE entitlements SET cancel_at_period_end = %s, updated_at = now() "
                           "WHERE learner_id = %s", (cancel, learner_id))
    return Change("subscription" if kind == "subscription" else "one_off", until)


def period_end(subscription: Any) -> datetime | None:
    """The current period's end: on the subscription's items in current API versions, else on itself."""
    try:
        items = subscription["items"]["data"]
        stamp = items[0]["current_period_end"] if items else subscription.get("current_period_end")
    except (KeyError, TypeError, IndexError):
        stamp = None
    return datetime.fromtimestamp(int(stamp), UTC) if stamp else None
