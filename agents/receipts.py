"""Delivery statuses, provider errors, learners' marketing preferences and business-account updates, consumed
by the sender agent from their own stream.

Statuses are recorded as they come (repeats ignored) and move a message forward only: a `delivered` that
arrives after `read` changes nothing, and one that arrives before the send was recorded is applied when it is.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from agents import lifecycle, platform
from charla.core import constants as c
from charla.core.bus import Delivery
from charla.core.errors import PermanentError
from charla.core.events import DeliveryStatus, PlatformNotice, PreferenceUpdate, ProviderError
from charla.core.runtime import Resources
from charla.core.worker import Handler
from charla.store import messages

log = logging.getLogger(__name__)


def build(res: Resources) -> Handler:
    async def handle(delivery: Delivery) -> None:
        event = delivery.event()
        if isinstance(event, DeliveryStatus):
            await record(res, event)
        elif isinstance(event, ProviderError):
            await alert(res, event)
        elif isinstance(event, PreferenceUpdate):
            await lifecycle.preference(res, event)
        elif isinstance(event, PlatformNotice):
            await platform.notice(res, event)
        else:
            raise PermanentError(f"receipts cannot handle {event.type}")

    return handle


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None  # biz_opaque_callback_data set by something other than Charla


async def record(res: Resources, event: DeliveryStatus) -> None:
    async with res.pool.connection() as conn, conn.transaction():
        await messages.record_status(conn, event.provider, event.provider_message_id, event.status,
                                     _uuid(event.outbound_id), event.occurred_at, event.errors)
    if event.status == "failed":
        codes = [e.get("code") for e in event.errors]
        log.warning("message %s failed at the provider: %s", event.provider_message_id, codes)


async def alert(res: Resources, event: ProviderError) -> None:
    log.warning("provider error %s: %s", event.code, event.title)
    await res.redis.hset(c.ALERTS_KEY, str(event.code),
                         json.dumps({"message": event.title, "at": time.time(), "provider": event.provider}))
