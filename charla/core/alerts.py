"""Operator alerts: what only an operator can fix (a rejected token, a missing template), logged loudly and
kept in Redis under ALERTS_KEY, one per code (the latest wins), until `charla status --clear-alerts`."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

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


async def current(redis: Redis) -> dict[str, dict[str, object]]:
    """Every alert kept, by code."""
    raw: dict[Any, Any] = await redis.hgetall(c.ALERTS_KEY)
    return {k.decode(): json.loads(v) for k, v in sorted(raw.items())}


async def clear(redis: Redis, code: str) -> None:
    """The alert under `code` is resolved (e.g. the template it was about was approved again)."""
    await redis.hdel(c.ALERTS_KEY, code)


async def template_status(redis: Redis, name: str, language: str, status: str | None = None) -> str | None:
    """The latest status WhatsApp reported for template `name` in `language` (None: never reported, so as
    configured); with `status`, record it first."""
    key = f"{name}:{language}"
    if status is not None:
        await redis.hset(c.TEMPLATES_KEY, key, json.dumps({"status": status, "at": time.time()}))
    raw = await redis.hget(c.TEMPLATES_KEY, key)
    return str(json.loads(raw)["status"]) if raw else None
