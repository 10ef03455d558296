"""Operator alerts: what only an operator can fix (a rejected token, a missing template), logged loudly and
kept in Redis under ALERTS_KEY, one per code (the latest wins), until `charla status --clear-alerts`."""

from __future__ import annotations

import json
import logging
import time

from redis.asyncio import Redis

from charla.core import constants as c

log = logging.getLogger(__name__)

# The setting that holds each provider's credentials: what an operator must check when they are rejected.
CREDENTIALS = {"meta": "WHATSAPP_ACCESS_TOKEN", "twilio": "TWILIO_AUTH_TOKEN"}


async def alert(redis: Redis, code: int | str | None, message: str) -> None:
    """An operator alert under `code` (a provider's error code, or a name such as "llm-groq"): logged loudly
    and kept in Redis for `charla status`."""
    log.critical("%s (code %s)", message, code)
    await redis.hset(c.ALERTS_KEY, str(code), json.dumps({"message": message, "at": time.time()}))


async def credentials_rejected(redis: Redis, provider: str, code: int | None, detail: object) -> None:
    """The alert for a provider that rejected Charla's credentials (sending, or downloading a voice note)."""
    setting = CREDENTIALS.get(provider, "its credentials")
    await alert(redis, code, f"{provider} rejected Charla's credentials: check {setting} ({detail})")
