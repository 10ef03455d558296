"""A learner's session: the recent conversation, kept in Redis for 24 hours after their last turn.

One JSON document per learner, read and written once per turn (turns of one learner never run
concurrently: the bus orders them), so the reply path makes no database call for it. When the prompt
would outgrow its budget, the oldest messages are folded into `summary` instead of being cut.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from charla.core import constants as c


class Said(BaseModel):
    role: str  # "user" (the learner) or "assistant" (Charla)
    text: str
    id: str = ""  # provider message id of a learner message: appending twice is a no-op
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Session(BaseModel):
    messages: list[Said] = Field(default_factory=list)
    summary: str = ""  # what the oldest, folded-away part of the session was about
    topic: str | None = None
    errors: dict[str, int] = Field(default_factory=dict)  # correction category -> count, this session
    awaiting: str | None = None  # a question Charla asked and the next message answers (e.g. "forget")
    offered: list[str] = Field(default_factory=list)  # ids of the choices last offered: "2" picks the second
    repeat: str | None = None  # a phrase Charla just spoke: the learner's next voice note is checked against it
    spoken: tuple[str, str] | None = None  # the last phrase Charla spoke, and its language (for "say it slower")

    def has(self, message_id: str) -> bool:
        return any(m.id == message_id for m in self.messages)

    def add(self, said: Said, keep: int) -> None:
        if said.id and self.has(said.id):
            return
        self.messages.append(said)
        del self.messages[:-keep]


def _key(learner: str) -> str:
    return c.SESSION_KEY.format(learner=learner)


async def load(redis: Redis, learner: str) -> Session:
    raw = await redis.get(_key(learner))
    return Session.model_validate_json(raw) if raw else Session()


async def save(redis: Redis, learner: str, session: Session, ttl_s: int) -> None:
    await redis.set(_key(learner), session.model_dump_json(), ex=ttl_s)


async def forget(redis: Redis, learner: str) -> None:
    await redis.delete(_key(learner))


async def move(redis: Redis, old: str, new: str) -> None:
    """Continue learner `old`'s session under `new` (a number change), keeping its expiry; a session `new`
    already has (their messages came before the notice) is the current one and stays. Key by key, not RENAMENX:
    on a Redis Cluster the two keys live in different slots. A crash between the copy and the delete leaves
    the old copy, which nothing reads any more, to expire."""
    source = _key(old)
    raw, ttl_ms = await redis.get(source), await redis.pttl(source)
    if raw is not None and ttl_ms != -2:  # -2: it expired between the two reads
        await redis.set(_key(new), raw, px=ttl_ms if ttl_ms > 0 else None, nx=True)
    await redis.delete(source)
