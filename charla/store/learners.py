"""Learners and their identities: a learner is found by any identity it has ever arrived with (an id it
had before a WhatsApp number change too: charla.store.lifecycle)."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import AsyncConnection

from charla.core.events import Identity
from charla.core.keys import keyed_hash

_COLUMNS = {"wa_id": "wa_id", "user_id": "wa_user_id", "twilio": "twilio_id", "console": "console_id"}
ALIASED = ("wa_id", "wa_user_id")  # the columns a WhatsApp number or user-id change moves (learner_aliases.kind)
# How long an id replaced by a number change still finds the learner: Meta retries a delivery for up to 7 days,
# and a phone number given up is eventually given to someone else, who must not inherit this learner.
ALIAS_DAYS = 14


def quota_hashes(ids: dict[str, str], secret: bytes) -> list[str]:
    """Keyed one-way hashes (HMAC-SHA256 under the server secret) of a learner's identities: what survives
    erasure, for the free quota only. Without the key, trying every phone number finds nothing."""
    return [keyed_hash(secret, f"charla-quota:{col}:{value}") for col, value in ids.items()]


def _ids(identity: Identity) -> dict[str, str]:
    return {col: getattr(identity, attr) for attr, col in _COLUMNS.items() if getattr(identity, attr)}


async def upsert(conn: AsyncConnection[tuple[object, ...]], identity: Identity,
                 seen_at: datetime | None = None, *, secret: bytes | None = None) -> uuid.UUID:
    """The learner with any of `identity`'s ids (created if new); ids learnt now are added to it. With
    `secret` (charla.core.keys.server_key), a new learner who once erased their data gets back the free
    messages they had used."""
    ids = _ids(identity)
    if not ids:
        raise ValueError("identity has no id")
    for _ in range(3):  # a concurrent insert of the same learner makes the first try lose the race
        found = await _touch(conn, ids, identity.name, seen_at)
        if found is not None:
            return found
        # Someone who erased their data comes back with the free messages they had used (none without `secret`).
        hashes = quota_hashes(ids, secret) if secret is not None else []
        cols = ", ".join(ids)
        marks = ", ".join(["%s"] * len(ids))
        query = (f"INSERT INTO learners ({cols}, display_name, last_inbound_at, free_used) "  # noqa: S608
                 f"VALUES ({marks}, %s, %s, (SELECT coalesce(max(free_used), 0) FROM erased_quota "
                 "WHERE identity_hash = ANY(%s))) ON CONFLICT DO NOTHING RETURNING id")
        row = await (await conn.execute(query.encode(), [*ids.values(), identity.name, seen_at, hashes])).fetchone()
        if row is not None:
            return uuid.UUID(str(row[0]))
    raise RuntimeError(f"could not create or find learner {identity.key()}")


async def find(conn: AsyncConnection[tuple[object, ...]], identity: Identity) -> uuid.UUID | None:
    """The learner with any of `identity`'s ids, if they have written before (read only)."""
    ids = _ids(identity)
    return await _find(conn, ids) if ids else None


async def _find(conn: AsyncConnection[tuple[object, ...]], ids: dict[str, str]) -> uuid.UUID | None:
    """The learner holding any of `ids` now, else the one that held one of them before a number change, for
    ALIAS_DAYS (table learner_aliases: late deliveries from the old number still find them)."""
    query, params = _found(ids)
    row = await (await conn.execute(query.encode(), params)).fetchone()
    return None if row is None else uuid.UUID(str(row[0]))


def _found(ids: dict[str, str]) -> tuple[str, list[str]]:
    """The query (and its parameters) of `_find`."""
    where = " OR ".join(f"{col} = %s" for col in ids)
    aliased = {col: value for col, value in ids.items() if col in ALIASED}
    pairs = " OR ".join("(kind = %s AND value = %s)" for _ in aliased) or "false"
    alias_where = f"({pairs}) AND created_at > now() - interval '{ALIAS_DAYS} days'"
    query = (f"SELECT id FROM (SELECT id, 0 AS via, created_at FROM learners WHERE {where} "  # noqa: S608
             f"UNION ALL SELECT learner_id, 1, created_at FROM learner_aliases WHERE {alias_where}) found "
             "ORDER BY via, created_at LIMIT 1")
    return query, [*ids.values(), *(part for pair in aliased.items() for part in pair)]


async def _touch(conn: AsyncConnection[tuple[object, ...]], ids: dict[str, str], name: str | None,
                 seen_at: datetime | None) -> uuid.UUID | None:
    """`_find`, and the found learner's ids learnt now, name and last message noted, in one statement."""
    found, params = _found(ids)
    fills = ", ".join(f"{col} = COALESCE({col}, %s)" for col in ids)
    query = (f"WITH found AS ({found}) "  # noqa: S608 - fixed names
             f"UPDATE learners SET {fills}, display_name = COALESCE(%s, display_name), "
             "last_inbound_at = GREATEST(last_inbound_at, %s), unreachable_at = NULL, unreachable_reason = NULL "
             "FROM found WHERE learners.id = found.id RETURNING learners.id")
    row = await (await conn.execute(query.encode(), [*params, *ids.values(), name, seen_at])).fetchone()
    return None if row is None else uuid.UUID(str(row[0]))


async def key_of(conn: AsyncConnection[tuple[object, ...]], learner_id: uuid.UUID) -> str | None:
    """The learner's ordering key (events.Identity.key: sessions and the bus use it), None if unknown."""
    row = await (await conn.execute(
        "SELECT wa_id, wa_user_id, twilio_id, console_id FROM learners WHERE id = %s", (learner_id,))).fetchone()
    if row is None:
        return None
    return Identity(**{field: str(v) for field, v in zip(_COLUMNS, row, strict=True) if v}).key()


async def identity(conn: AsyncConnection[tuple[object, ...]], learner_id: uuid.UUID) -> Identity | None:
    """Every id the learner has now (where a reply or a prompt goes), None if unknown."""
    row = await (await conn.execute(
        "SELECT wa_id, wa_user_id, twilio_id, console_id, display_name FROM learners WHERE id = %s",
        (learner_id,))).fetchone()
    if row is None:
        return None
    return Identity(**{field: str(v) for field, v in zip((*_COLUMNS, "name"), row, strict=True) if v})


async def bus_keys(conn: AsyncConnection[tuple[object, ...]], learner_id: uuid.UUID) -> frozenset[str] | None:
    """Every ordering key the learner's events can carry on the bus (Identity.key of each id they have; a
    phone number also as its Twilio address, which Twilio's statuses are keyed by); None if unknown."""
    row = await (await conn.execute(
        "SELECT wa_id, wa_user_id, twilio_id, console_id FROM learners WHERE id = %s", (learner_id,))).fetchone()
    if row is None:
        return None
    found = {Identity(**{field: str(value)}).key() for field, value in zip(_COLUMNS, row, strict=True) if value}
    if row[0]:
        found.add(Identity(twilio=f"whatsapp:+{row[0]}").key())
    for kind, value in await aliases(conn, learner_id):  # ids from before a number change
        found.add(Identity(**{"wa_id" if kind == "wa_id" else "user_id": value}).key())
    return frozenset(found)


async def is_alias(conn: AsyncConnection[tuple[object, ...]], identity: Identity) -> bool:
    """Whether `identity` arrived with an id its learner no longer has (a delivery from before a number change)."""
    row = await (await conn.execute(
        """SELECT EXISTS (SELECT 1 FROM learner_aliases WHERE ((kind = 'wa_id' AND value = %s)
                          OR (kind = 'wa_user_id' AND value = %s)) AND created_at > now() - %s * interval '1 day')""",
        (identity.wa_id, identity.user_id, ALIAS_DAYS))).fetchone()
    return bool(row and row[0])


async def aliases(conn: AsyncConnection[tuple[object, ...]], learner_id: uuid.UUID) -> list[tuple[str, str]]:
    """The (column, value) ids the learner had before a WhatsApp number or user-id change."""
    rows = await (await conn.execute("SELECT kind, value FROM learner_aliases WHERE learner_id = %s ORDER BY 1, 2",
                                     (learner_id,))).fetchall()
    return [(str(kind), str(value)) for kind, value in rows]


async def erase(conn: AsyncConnection[tuple[object, ...]], learner_id: uuid.UUID, secret: bytes) -> None:
    """Delete a learner and everything about them (messages, profile, memories, schedules, turns cascade).
    Payment records are kept, unlinked from the person, because accounting law requires them; the Stripe
    events behind them keep only ids, amounts and dates (no name, email or phone)."""
    await conn.execute("UPDATE payments SET learner_id = NULL WHERE learner_id = %s", (learner_id,))
    row = await (await conn.execute(
        "SELECT wa_id, wa_user_id, twilio_id, console_id, free_used FROM learners WHERE id = %s",
        (learner_id,))).fetchone()
    if row is not None:
        ids = {col: str(value) for col, value in zip(("wa_id", "wa_user_id", "twilio_id", "console_id"), row[:4],
                                                     strict=True) if value}
        former = await aliases(conn, learner_id)  # the number before a change counts too
        for identity_hash in [*quota_hashes(ids, secret), *(quota_hashes({col: value}, secret)[0]
                                                            for col, value in former)]:
            await conn.execute(
                """INSERT INTO erased_quota (identity_hash, free_used) VALUES (%s, %s)
                   ON CONFLICT (identity_hash) DO UPDATE SET free_used = greatest(erased_quota.free_used,
                                                                                  EXCLUDED.free_used)""",
                (identity_hash, int(str(row[4]))))
    await conn.execute(
        """UPDATE stripe_events SET learner_id = NULL, payload = jsonb_strip_nulls(jsonb_build_object(
               'id', payload->'id', 'object', payload->'object', 'amount_total', payload->'amount_total',
               'amount_refunded', payload->'amount_refunded', 'currency', payload->'currency',
               'payment_intent', payload->'payment_intent', 'subscription', payload->'subscription'))
           WHERE learner_id = %s""", (learner_id,))
    await conn.execute("DELETE FROM learners WHERE id = %s", (learner_id,))
