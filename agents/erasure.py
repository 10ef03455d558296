"""Erasure: a learner's "delete my data" and the dashboard's delete remove them everywhere, by one path.

PostgreSQL first (charla.store.learners.erase: rows, with an HMAC of each identity kept for the free quota),
then Redis: the session, takeover and entitlement cache, their entries on every bus stream and their dead
letters, so neither a redelivery nor a dead-letter replay can bring the learner back. The Redis part
runs after the database transaction committed; a learner's own erasure publishes its confirmation before
the stream purge (whose entry must survive it), so it bounds the purge with `marks` taken before that
publish.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from charla.core import constants as c
from charla.core import keys
from charla.core.bus import Bus
from charla.core.runtime import Resources
from charla.ops import deadletters, export, takeover
from charla.store import learners, session
from charla.store.messages import Conn
from payments import entitlements

log = logging.getLogger(__name__)

Marks = dict[str, str]  # stream -> id of its newest entry when the erasure happened


@dataclass(frozen=True)
class Erased:
    """A learner whose rows are gone, and the bus keys their events were published under."""

    learner_id: uuid.UUID
    keys: frozenset[str]


async def erase_rows(conn: Conn, learner_id: uuid.UUID, secret: bytes) -> Erased | None:
    """Delete the learner's rows (inside the caller's transaction); None when there is no such learner."""
    found = await learners.bus_keys(conn, learner_id)
    if found is None:
        return None
    await learners.erase(conn, learner_id, secret)
    return Erased(learner_id, found)


async def marks(bus: Bus) -> Marks:
    """Where each bus stream ends now: what is published after this is not the erased learner's."""
    ends = {stream: await bus.last_id(stream) for stream in c.CONSUMER_GROUPS}
    return {stream: end for stream, end in ends.items() if end is not None}


async def purge(res: Resources, erased: Erased) -> None:
    """Forget the erased learner everywhere in Redis (forget_state, then purge_streams)."""
    await forget_state(res, erased)
    await purge_streams(res, erased)


async def forget_state(res: Resources, erased: Erased) -> None:
    """Drop the erased learner's session, takeover, cached entitlement and kept data exports."""
    for key in erased.keys:
        await session.forget(res.redis, key)
    await takeover.release(res.redis, erased.learner_id)  # the learner is new to everyone, operators included
    await entitlements.invalidate(res.redis, erased.learner_id)  # no cache keyed by the erased id outlives it
    await export.forget(res.redis, erased.learner_id)


async def purge_streams(res: Resources, erased: Erased, until: Marks | None = None) -> None:
    """Delete the erased learner's entries on every bus stream (up to `until`, else all) and their dead
    letters."""
    ends = await marks(res.bus) if until is None else until
    entries = 0
    for stream, end in ends.items():
        entries += await res.bus.purge(stream, erased.keys, end)
    dead = await deadletters.purge(res.redis, erased.keys)
    log.info("erased learner %s: %d stream entries and %d dead letters purged", erased.learner_id, entries, dead)


async def erase_learner(res: Resources, learner_id: uuid.UUID) -> bool:
    """Erase a learner everywhere (the dashboard's delete); False when they were already gone."""
    async with res.pool.connection() as conn, conn.transaction():
        erased = await erase_rows(conn, learner_id, keys.server_key(res.settings))
    if erased is None:
        return False
    await purge(res, erased)
    return True
