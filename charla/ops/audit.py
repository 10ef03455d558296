"""The audit log: who did what on the dashboard, and when (table `audit_log`, schema/0011_audit.sql).

Rows are written with the action's own connection, inside its transaction where it has one, so an action
that rolls back leaves no row and a recorded action happened. Targets are ids, never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row

Conn = AsyncConnection[tuple[object, ...]]

Action = Literal["login", "login-failed", "logout", "delete-learner", "export-learner", "take-over", "release",
                 "reply", "broadcast-send", "broadcast-cancel", "dead-replay", "dead-replay-all", "dead-drop"]


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    operator: str
    action: str
    target: str | None
    detail: str | None


async def record(conn: Conn, operator: str, action: Action, target: str | None = None,
                 detail: str | None = None) -> None:
    """Add one row (detail cut to 200 characters: a summary, not a copy)."""
    await conn.execute("INSERT INTO audit_log (operator, action, target, detail) VALUES (%s, %s, %s, %s)",
                       (operator[:64], action, target, detail[:200] if detail else None))


async def recent(conn: Conn, *, limit: int = 50, before: int | None = None) -> list[Entry]:
    """The newest rows first, `limit` of them, older than row `before` when given (the next page)."""
    async with conn.cursor(row_factory=class_row(Entry)) as cur:
        await cur.execute("""SELECT id, at, operator, action, target, detail FROM audit_log
                             WHERE %(before)s::bigint IS NULL OR id < %(before)s ORDER BY id DESC LIMIT %(limit)s""",
                          {"before": before, "limit": limit})
        return await cur.fetchall()
