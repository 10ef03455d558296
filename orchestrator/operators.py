"""Dashboard operators: who presents which token, their server-side sessions, and the login rate limit.

Sessions live in Redis under the sha256 of their cookie (a random 32-byte value), with the operator's name
and the session's CSRF token; they expire a fixed CHARLA_ADMIN_SESSION_S after login (not sliding: a
stolen cookie stays useful no longer than that) and logout deletes them. Wrong logins count per client
address and globally in fixed windows of CHARLA_LOGIN_WINDOW_S; a full window locks logins out until it ends.
Each counter is its own key, read and counted on its own (a Redis Cluster keeps them in different slots).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from charla.core.constants import PREFIX
from charla.core.redis_client import get_each
from charla.core.settings import Settings

_SESSIONS = f"{PREFIX}:admin:session"
_FAILURES = f"{PREFIX}:admin:login-failures"


@dataclass(frozen=True)
class Operator:
    """Who is acting. `csrf` is the session's form token; None when a Bearer token authenticated the request
    (nothing ambient a cross-site form could borrow, so no form token is needed)."""

    name: str
    csrf: str | None = None


def by_token(settings: Settings, presented: str) -> str | None:
    """The operator whose token this is. Every token is compared, each in constant time."""
    found = None
    for name, token in settings.operators().items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = name
    return found


def _session_key(session_id: str) -> str:
    return f"{_SESSIONS}:{hashlib.sha256(session_id.encode()).hexdigest()}"


async def open_session(redis: Redis, name: str, ttl_s: int) -> tuple[str, Operator]:
    """A new session for operator `name`: its cookie value (stored only hashed) and the operator."""
    session_id, operator = secrets.token_urlsafe(32), Operator(name, secrets.token_urlsafe(32))
    key = _session_key(session_id)
    await redis.hset(key, mapping={"operator": name, "csrf": operator.csrf or ""})
    await redis.expire(key, ttl_s)
    return session_id, operator


async def session(redis: Redis, session_id: str) -> Operator | None:
    """The operator of a live session, None for an unknown, expired or revoked cookie."""
    if not session_id:
        return None
    found: dict[bytes | str, bytes | str] = await redis.hgetall(_session_key(session_id))
    values = {_text(k): _text(v) for k, v in found.items()}
    return Operator(values["operator"], values["csrf"]) if "operator" in values else None


async def close_session(redis: Redis, session_id: str) -> None:
    """Revoke a session: its cookie stops working at once."""
    await redis.delete(_session_key(session_id))


async def locked_for(redis: Redis, settings: Settings, client: str) -> int:
    """Seconds until logins from `client` are accepted again (0: now)."""
    mine, everyone = f"{_FAILURES}:{client}", f"{_FAILURES}:all"
    counts = await get_each(redis, [mine, everyone])
    full = [key for key, count, limit in ((mine, counts[0], settings.login_attempts),
                                          (everyone, counts[1], settings.login_global_attempts))
            if count is not None and int(count) >= limit]
    return max([max(1, await redis.ttl(key)) for key in full], default=0)


async def failed(redis: Redis, settings: Settings, client: str) -> None:
    """Count one wrong login from `client` (the window starts at the first)."""
    for key in (f"{_FAILURES}:{client}", f"{_FAILURES}:all"):
        # One transaction per counter: its window opened and counted together, so it never outlives its
        # expiry (an INCR after the key expired would make one without a TTL: a lockout for good).
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=settings.login_window_s, nx=True)
            pipe.incr(key)
            await pipe.execute()


async def succeeded(redis: Redis, client: str) -> None:
    """A right login clears its address's count (the global one runs out on its own)."""
    await redis.delete(f"{_FAILURES}:{client}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
