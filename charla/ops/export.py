"""A learner's data as one machine-readable document: "send me my data" and the dashboard's export.

Every table that keeps a `learner_id` is listed in TABLES (tests/ops/test_export.py fails when a new one is
not), read row by row as JSON by PostgreSQL itself, so a new column is exported without a change here.
Left out on purpose: memory embeddings (numbers derived from the memory's text, which is exported) and the
raw Stripe objects (they can carry card details); the payments' amounts, dates and states are exported.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from charla.channels import media
from charla.core import constants as c
from charla.store import session
from charla.store.messages import Conn

SCHEMA_VERSION = 1
FILENAME = "charla-data.json"
MEDIA_TYPE = "application/json"  # as Charla serves it (Twilio, the console, the dashboard)
# As it is uploaded to Meta: WhatsApp's document types are text/plain, PDF and Office formats, not JSON; the
# ".json" file name is what the phone shows and opens it by.
UPLOAD_TYPE = "text/plain"


@dataclass(frozen=True)
class Table:
    """One learner table: its rows in `order`, without the `omit` columns (and without `learner_id`)."""

    name: str
    order: str
    omit: tuple[str, ...] = ()
    single: bool = False  # at most one row per learner: exported as an object (or null)


TABLES: tuple[Table, ...] = (
    Table("profiles", "learner_id", single=True),
    Table("messages", "id"),
    Table("turns", "id"),
    Table("pending_turns", "learner_id", single=True),
    Table("memories", "id", omit=("embedding",)),
    Table("schedules", "id"),
    Table("practice_prompts", "id"),
    Table("practice_cards", "item"),
    Table("wordbook", "word"),
    Table("entitlements", "learner_id", single=True),
    Table("daily_usage", "day"),
    Table("payments", "id"),
    Table("stripe_events", "created", omit=("payload",)),
    Table("broadcast_recipients", "broadcast_id"),
    Table("learner_aliases", "created_at"),
    Table("learner_events", "id"),
    Table("activities", "learner_id", single=True),
)

# The session keys a learner's identities give (charla.core.events.Identity.key), by learners column.
_SESSION_PREFIXES = (("wa_id", "wa"), ("wa_user_id", "bsuid"), ("twilio_id", "tw"), ("console_id", "console"))


class UnknownLearner(LookupError):
    """No learner has this id (erased, or never existed)."""


async def export(conn: Conn, learner_id: uuid.UUID, *, redis: Redis | None = None) -> dict[str, Any]:
    """Everything kept about the learner, as JSON-ready data; with `redis`, their live session too.
    Raises UnknownLearner when there is no such learner."""
    learner = await _one(conn, sql.SQL("SELECT to_jsonb(l) FROM learners l WHERE id = %s"), learner_id)
    if learner is None:
        raise UnknownLearner(str(learner_id))
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION,
                                "exported_at": datetime.now(UTC).isoformat(), "learner": learner}
    for table in TABLES:
        rows = await _rows(conn, table, learner_id)
        document[table.name] = (rows[0] if rows else None) if table.single else rows
    if redis is not None:
        document["sessions"] = await _sessions(redis, learner)
    return document


def dumps(document: dict[str, Any]) -> bytes:
    """The export as the bytes of a UTF-8 JSON file (indented: people open it too)."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


async def stash(pool: AsyncConnectionPool, redis: Redis, learner_id: uuid.UUID, ttl_s: int) -> str:
    """Export the learner now and keep the file in Redis for `ttl_s` seconds; returns its random token (the
    sender and /media/<token>.json find it by `doc:<token>`)."""
    async with pool.connection() as conn:
        data = dumps(await export(conn, learner_id, redis=redis))
    return await keep(redis, learner_id, data, ttl_s)


async def keep(redis: Redis, learner_id: uuid.UUID, data: bytes, ttl_s: int) -> str:
    """Keep a file sent to the learner (their export, their wordbook) for `ttl_s` seconds under a random token,
    listed with the learner's exports (erasure deletes them all); returns the token."""
    token = secrets.token_urlsafe(24)
    await media.keep(redis, f"doc:{token}", data, ttl_s)
    listed = c.EXPORTS_KEY.format(learner_id=learner_id)
    await redis.sadd(listed, token)
    await redis.expire(listed, ttl_s)
    return token


async def forget(redis: Redis, learner_id: uuid.UUID) -> None:
    """Delete every data export of the learner still kept (an erased learner's file must not outlive them)."""
    listed = c.EXPORTS_KEY.format(learner_id=learner_id)
    for token in await redis.smembers(listed):
        await media.drop(redis, f"doc:{token.decode() if isinstance(token, bytes) else token}")
    await redis.delete(listed)


# The files Charla serves at /media/<token>.<extension> for Twilio and the console: their name and type.
SERVED = {"json": (FILENAME, MEDIA_TYPE), "apkg": ("charla-words.apkg", "application/octet-stream"),
          "csv": ("charla-words.csv", "text/csv; charset=utf-8")}


def attachment_headers(extension: str = "json") -> dict[str, str]:
    """Headers for serving a learner's file as a download that no cache keeps."""
    return {"Content-Disposition": f'attachment; filename="{SERVED[extension][0]}"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"}


async def _rows(conn: Conn, table: Table, learner_id: uuid.UUID) -> list[Any]:
    query = sql.SQL("SELECT coalesce(jsonb_agg(to_jsonb(t) - %s::text[] ORDER BY t.{order}), '[]'::jsonb) "
                    "FROM {table} t WHERE t.learner_id = %s").format(order=sql.Identifier(table.order),
                                                                     table=sql.Identifier(table.name))
    row = await (await conn.execute(query, (["learner_id", *table.omit], learner_id))).fetchone()
    return list(row[0]) if row and isinstance(row[0], list) else []


async def _one(conn: Conn, query: sql.SQL, learner_id: uuid.UUID) -> dict[str, Any] | None:
    row = await (await conn.execute(query, (learner_id,))).fetchone()
    return row[0] if row and isinstance(row[0], dict) else None


async def _sessions(redis: Redis, learner: dict[str, Any]) -> dict[str, Any]:
    """The Redis session under each of the learner's identities (recent messages, their summary, topic)."""
    found: dict[str, Any] = {}
    for column, prefix in _SESSION_PREFIXES:
        if learner.get(column):
            key = f"{prefix}:{learner[column]}"
            current = await session.load(redis, key)
            if current != session.Session():
                found[key] = current.model_dump(mode="json")
    return found
