"""The guided activity a learner is in (placement, a roleplay mission, a read-aloud or dictation round) and its
state, in PostgreSQL: it survives restarts and the 24-hour window. At most one per learner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from charla.store.messages import Conn


@dataclass(frozen=True)
class Active:
    kind: str
    state: dict[str, Any]
    started_at: datetime
    updated_at: datetime


async def current(conn: Conn, learner_id: uuid.UUID) -> Active | None:
    """The learner's open activity, if any."""
    async with conn.cursor(row_factory=class_row(Active)) as cur:
        await cur.execute("SELECT kind, state, started_at, updated_at FROM activities WHERE learner_id = %s",
                          (learner_id,))
        return await cur.fetchone()


async def begin(conn: Conn, learner_id: uuid.UUID, kind: str, state: dict[str, Any]) -> None:
    """Open `kind` for the learner, replacing whatever activity was open."""
    await begin_all(conn, [(learner_id, kind, state)])


async def begin_all(conn: Conn, opened: list[tuple[uuid.UUID, str, dict[str, Any]]]) -> None:
    """Open an activity for each (learner, kind, state), replacing whatever was open (pipelined: a batch of
    scheduled read-aloud prompts)."""
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO activities (learner_id, kind, state) VALUES (%s, %s, %s)
               ON CONFLICT (learner_id) DO UPDATE SET kind = EXCLUDED.kind, state = EXCLUDED.state,
                                                      started_at = now(), updated_at = now()""",
            [(learner_id, kind, Jsonb(state)) for learner_id, kind, state in opened])


async def save(conn: Conn, learner_id: uuid.UUID, state: dict[str, Any]) -> None:
    """The open activity's next state."""
    await conn.execute("UPDATE activities SET state = %s, updated_at = now() WHERE learner_id = %s",
                       (Jsonb(state), learner_id))


async def finish(conn: Conn, learner_id: uuid.UUID) -> None:
    """Close the learner's activity (its results were written to the profile)."""
    await conn.execute("DELETE FROM activities WHERE learner_id = %s", (learner_id,))
