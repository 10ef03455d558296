"""Buttons and lists on Twilio: session content from the Content API, created once per set of choices.

Twilio sends WhatsApp buttons and lists only as Content API resources (`HX…`). Inside the 24-hour window a
`twilio/quick-reply` (up to 3 buttons) or `twilio/list-picker` (up to 10 rows) needs no WhatsApp approval, so
each distinct set of choices becomes one resource whose body is the variable `{{1}}`: the same buttons serve
every message that offers them. Its SID is kept in Redis, shared by every sender. Choices that fit neither
(see `content_types`) go out as numbered text, which is answered by number.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from charla.channels.chunking import split_text
from charla.channels.meta.graph import (
    BUTTON_TITLE,
    INTERACTIVE_BODY,
    LIST_BUTTON,
    MAX_BUTTONS,
    MAX_ROWS,
    ROW_DESCRIPTION,
    ROW_TITLE,
)
from charla.channels.twilio.api import TwilioClient, TwilioPermanentError
from charla.core import constants as c
from charla.core.events import Choice
from charla.core.redis_client import text

log = logging.getLogger(__name__)

ID_LIMIT = 200  # a list item's id (Twilio's limit; WhatsApp's reply button ids allow 256)
LANGUAGE = "en"  # the resource's language; Charla's choices carry none, and session content is not reviewed
BODY = "{{1}}"
REFUSED = "refused"  # cached instead of a SID when the Content API refused a set of choices for good
REFUSED_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Buttons:
    """The content offering one set of choices: its SID, and the `types` it was made from (its cache key)."""

    sid: str
    types: dict[str, Any]


async def buttons(redis: Redis, twilio: TwilioClient, choices: list[Choice], button: str,
                  fallback: str) -> Buttons | None:
    """Content offering `choices` (see `content_types`), created on first use; None when they fit neither
    buttons nor a list, or the Content API refuses them for good (the caller sends numbered text). Its
    transient errors propagate, for the bus to retry."""
    types = content_types(choices, button, fallback)
    if types is None:
        return None
    sid = await content_sid(redis, twilio, types)
    return Buttons(sid, types) if sid else None


def content_types(choices: list[Choice], button: str, fallback: str) -> dict[str, Any] | None:
    """The Content API `types` offering `choices` (reply buttons when they fit, else a list behind `button`),
    with `fallback` after the body as the `twilio/text` for channels without either. None when the choices
    fit neither within WhatsApp's limits; they are never shortened (the numbered text shows them whole)."""
    if not choices or any(not ch.id or len(ch.id) > ID_LIMIT or not ch.title.strip() for ch in choices):
        return None
    text = {"twilio/text": {"body": f"{BODY}\n\n{fallback}"}}
    if len(choices) <= MAX_BUTTONS and all(len(ch.title) <= BUTTON_TITLE and not ch.description for ch in choices):
        return {"twilio/quick-reply": {"body": BODY, "actions": [{"id": ch.id, "title": ch.title} for ch in choices]},
                **text}
    if len(choices) > MAX_ROWS or not button.strip() or len(button) > LIST_BUTTON:
        return None
    if any(len(ch.title) > ROW_TITLE or len(ch.description) > ROW_DESCRIPTION for ch in choices):
        return None
    items = [{"id": ch.id, "item": ch.title, **({"description": ch.description} if ch.description else {})}
             for ch in choices]
    return {"twilio/list-picker": {"body": BODY, "button": button, "items": items}, **text}


def body_parts(text: str, limit: int) -> list[str]:
    """`text` as the parts to send, the last of which fills `{{1}}`: its last line with whitespace runs
    collapsed (Twilio refuses variables with a newline, a tab or more than four spaces: error 21656), at most
    1024 characters. Empty when `text` is blank (a variable cannot be empty either)."""
    head, _, last = text.strip().rpartition("\n")
    return split_text(head.rstrip(), limit) + split_text(" ".join(last.split()), min(limit, INTERACTIVE_BODY))


async def content_sid(redis: Redis, twilio: TwilioClient, types: dict[str, Any]) -> str | None:
    """The SID of the content with these `types`, created on first use; None when the Content API refuses
    it for good (remembered for REFUSED_TTL_S, so the same choices do not ask again on every offer)."""
    key = _key(types)
    if cached := await _get(redis, key):
        if cached == REFUSED:
            return None
        await redis.expire(key, c.TWILIO_CONTENT_TTL_S)
        return cached
    try:
        sid = await twilio.create_content(f"charla_choices_{key[-16:]}", LANGUAGE, types, {"1": "…"})
    except TwilioPermanentError as exc:
        log.warning("the Content API refused a set of choices (%s): numbered text instead", exc)
        await redis.set(key, REFUSED, ex=REFUSED_TTL_S, nx=True)
        return None
    if await redis.set(key, sid, ex=c.TWILIO_CONTENT_TTL_S, nx=True):
        return sid
    return await _get(redis, key) or sid  # another sender created the same set meanwhile: all use its SID


async def forget(redis: Redis, types: dict[str, Any]) -> None:
    """Drop the cached SID (Twilio no longer knows it): the next send creates the content again."""
    await redis.delete(_key(types))


async def _get(redis: Redis, key: str) -> str | None:
    value = await redis.get(key)
    return None if value is None else text(value)


def _key(types: dict[str, Any]) -> str:
    canonical = json.dumps([LANGUAGE, types], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return c.TWILIO_CONTENT_KEY.format(digest=hashlib.sha256(canonical.encode()).hexdigest())
