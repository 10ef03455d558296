"""What a learner may use: the free quota, the paid daily cap, the blocklist, and the cached entitlement.

Counting is atomic in PostgreSQL (a conditional UPDATE/UPSERT under the row lock), so concurrent messages
never get more than the quota. The entitlement (status + whether "you're all set" was said) is cached in
Redis; the payment agent deletes the cached value and PUBLISHes on a channel whenever it changes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from charla.channels.registry import local_console
from charla.core import constants as c
from charla.core.settings import Settings
from charla.store.messages import Conn
from charla.store.profile import zone

PREMIUM = frozenset({"trial", "active", "past_due"})  # past_due: Stripe is still retrying; keep payers working
CACHE_TTL_S = 3600


@dataclass(frozen=True)
class Entitlement:
    status: str  # free, trial, active, past_due, cancelled, refunded
    announced: bool = True

    @property
    def premium(self) -> bool:
        return self.status in PREMIUM


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    plan: Literal["free", "paid"]
    used: int  # after this turn (or the count that stopped it)
    limit: int


def _cache_key(learner_id: uuid.UUID) -> str:
    return c.ENTITLEMENT_KEY.format(learner=learner_id)


async def entitlement(redis: Redis, pool: AsyncConnectionPool, learner_id: uuid.UUID) -> Entitlement:
    """The learner's entitlement: from the cache, else from PostgreSQL (then cached)."""
    raw = await redis.get(_cache_key(learner_id))
    if raw:
        return Entitlement(**json.loads(raw))
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT status, announced FROM entitlements WHERE learner_id = %s",
                                        (learner_id,))).fetchone()
    found = Entitlement(str(row[0]), bool(row[1])) if row else Entitlement("free")
    await redis.set(_cache_key(learner_id), json.dumps(found.__dict__), ex=CACHE_TTL_S)
    return found


async def invalidate(redis: Redis, learner_id: uuid.UUID) -> None:
    """Drop the cached entitlement and tell every process that caches it."""
    await redis.delete(_cache_key(learner_id))
    await redis.publish(c.ENTITLEMENT_CHANNEL, str(learner_id))


async def admit(conn: Conn, learner_id: uuid.UUID, premium: bool, messages: int, timezone: str | None,
                now: datetime, settings: Settings) -> Verdict:
    """Count `messages` against the learner's allowance, atomically; not allowed once it is used up."""
    if premium:
        day = now.astimezone(zone(timezone)).date()
        row = await (await conn.execute(
            """INSERT INTO daily_usage (learner_id, day, used) VALUES (%s, %s, %s)
               ON CONFLICT (learner_id, day) DO UPDATE SET used = daily_usage.used + EXCLUDED.used
               WHERE daily_usage.used < %s RETURNING used""",
            (learner_id, day, messages, settings.paid_daily_messages))).fetchone()
        limit = settings.paid_daily_messages
        return Verdict(row is not None and limit > 0, "paid", int(str(row[0])) if row else limit, limit)
    row = await (await conn.execute(
        """UPDATE learners SET free_used = LEAST(free_used + %s, %s) WHERE id = %s AND free_used < %s
           RETURNING free_used""", (messages, settings.free_messages, learner_id, settings.free_messages))).fetchone()
    return Verdict(row is not None, "free", int(str(row[0])) if row else settings.free_messages,
                   settings.free_messages)


async def peek(conn: Conn, learner_id: uuid.UUID, premium: bool, timezone: str | None, now: datetime,
               settings: Settings) -> Verdict:
    """Whether one more message is allowed, without counting it (checked before a model is asked)."""
    if premium:
        day = now.astimezone(zone(timezone)).date()
        row = await (await conn.execute("SELECT used FROM daily_usage WHERE learner_id = %s AND day = %s",
                                        (learner_id, day))).fetchone()
        used, limit = (int(str(row[0])) if row else 0), settings.paid_daily_messages
        return Verdict(used < limit, "paid", used, limit)
    row = await (await conn.execute("SELECT free_used FROM learners WHERE id = %s", (learner_id,))).fetchone()
    used = int(str(row[0])) if row else 0
    return Verdict(used < settings.free_messages, "free", used, settings.free_messages)




async def mark_announced(conn: Conn, learner_id: uuid.UUID) -> None:
    await conn.execute("UPDATE entitlements SET announced = true WHERE learner_id = %s", (learner_id,))


def reference(learner_id: uuid.UUID) -> str:
    """The learner's `client_reference_id` (Stripe allows letters, digits, `-` and `_`)."""
    return learner_id.hex


def payment_link(settings: Settings, learner_id: uuid.UUID) -> str | None:
    """The Stripe Payment Link carrying the learner's reference; the console's simulated checkout locally."""
    link = settings.stripe_payment_link
    if not link and local_console(settings):
        link = f"{settings.local_url}/console/pay"
    if not link:
        return None
    joiner = "&" if "?" in link else "?"
    return link + joiner + urlencode({"client_reference_id": reference(learner_id)})


async def is_blocked(redis: Redis, learner_key: str) -> bool:
    return bool(await redis.sismember(c.BLOCKED_KEY, learner_key))


async def block(redis: Redis, learner_key: str) -> bool:
    return bool(await redis.sadd(c.BLOCKED_KEY, learner_key))


async def unblock(redis: Redis, learner_key: str) -> bool:
    return bool(await redis.srem(c.BLOCKED_KEY, learner_key))


async def blocked(redis: Redis) -> list[str]:
    members = await redis.smembers(c.BLOCKED_KEY)
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)


def learner_key(text: str) -> str:
    """A learner's bus key from what an operator types: "wa:34600…", "+34 600…", "34600…", "console:ana"."""
    text = text.strip()
    if ":" in text:
        return text
    digits = "".join(ch for ch in text if ch.isdigit())
    return f"wa:{digits}" if digits else f"console:{text}"
