"""The payment agent: applies verified Stripe events to PostgreSQL, then drops the cached entitlements.

`charla agent payments`. Each event is recorded and applied in one transaction (see `payments.ledger`);
the cache is invalidated after the commit, so the learner's next message sees the new status.
"""

from __future__ import annotations

from charla.core.bus import Delivery
from charla.core.errors import PermanentError
from charla.core.events import StripeEvent
from charla.core.runtime import Resources
from charla.core.worker import Handler
from payments import entitlements, ledger


def build(res: Resources) -> Handler:
    async def handle(delivery: Delivery) -> None:
        event = delivery.event()
        if not isinstance(event, StripeEvent):
            raise PermanentError(f"payment agent cannot handle {event.type}")
        async with res.pool.connection() as conn, conn.transaction():
            changed = await ledger.apply(conn, event)
        for learner_id in changed:
            await entitlements.invalidate(res.redis, learner_id)

    return handle
