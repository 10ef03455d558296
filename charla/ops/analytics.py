"""What the operator dashboard shows, computed in PostgreSQL: activity, voice share, latency per stage,
provider share and cost, conversions and revenue, failed sends. One query per figure, each over indexed
time ranges; every series has one point per day (days without data are zeros, not gaps)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from psycopg import sql

from charla.store import lifecycle
from charla.store.messages import Conn


@dataclass(frozen=True)
class Series:
    """Values per day, oldest first, one list per named line."""

    days: list[date]
    lines: dict[str, list[float]]


@dataclass(frozen=True)
class Overview:
    learners: int
    dau: int
    wau: int
    messages_today: int
    voice_share_7d: float
    paid: int
    conversions_30d: int
    revenue_30d: dict[str, float]  # currency -> amount
    failed_sends_7d: int
    activity: Series  # daily and weekly (trailing 7 days) active learners
    messages: Series  # inbound and outbound per day
    voice: Series  # share of inbound messages that were voice notes, per day
    revenue: Series  # paid checkouts and revenue (in major units, all currencies added) per day
    latency: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> {"p50", "p95"} in ms
    providers: dict[str, dict[str, float]] = field(default_factory=dict)  # provider -> turns, cost_usd


async def overview(conn: Conn, days: int = 30) -> Overview:
    counts = await _one(conn, """
        SELECT (SELECT count(*) FROM learners),
               (SELECT count(DISTINCT learner_id) FROM messages WHERE direction = 'in'
                  AND created_at > now() - interval '1 day'),
               (SELECT count(DISTINCT learner_id) FROM messages WHERE direction = 'in'
                  AND created_at > now() - interval '7 days'),
               (SELECT count(*) FROM messages WHERE created_at >= date_trunc('day', now())),
               (SELECT coalesce(avg((kind = 'audio')::int), 0) FROM messages WHERE direction = 'in'
                  AND created_at > now() - interval '7 days'),
               (SELECT count(*) FROM entitlements WHERE status IN ('active', 'trial')),
               (SELECT count(*) FROM payments WHERE kind = 'checkout' AND status = 'paid'
                  AND created_at > now() - interval '30 days'),
               (SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'failed'
                  AND created_at > now() - interval '7 days')""")
    revenue_rows: list[Any] = await (await conn.execute(
        """SELECT upper(coalesce(currency, '?')), sum(amount_cents) / 100.0 FROM payments
           WHERE status = 'paid' AND created_at > now() - interval '30 days' GROUP BY 1""")).fetchall()
    return Overview(
        learners=int(counts[0]), dau=int(counts[1]), wau=int(counts[2]), messages_today=int(counts[3]),
        voice_share_7d=float(counts[4]), paid=int(counts[5]), conversions_30d=int(counts[6]),
        revenue_30d={str(r[0]): float(r[1] or 0) for r in revenue_rows}, failed_sends_7d=int(counts[7]),
        activity=await _series(conn, days, """
            SELECT d, count(DISTINCT a.learner_id) FILTER (WHERE a.day = d), count(DISTINCT a.learner_id)
            FROM days LEFT JOIN (
                SELECT DISTINCT date_trunc('day', created_at) AS day, learner_id FROM messages
                WHERE direction = 'in' AND created_at >= (SELECT min(d) FROM days) - interval '6 days') a
              ON a.day BETWEEN d - interval '6 days' AND d
            GROUP BY d""", ("daily active", "weekly active")),
        messages=await _series(conn, days, """
            SELECT d, count(*) FILTER (WHERE m.direction = 'in'), count(*) FILTER (WHERE m.direction = 'out')
            FROM days LEFT JOIN messages m ON m.created_at >= d AND m.created_at < d + interval '1 day'
            GROUP BY d""", ("from learners", "from Charla")),
        voice=await _series(conn, days, """
            SELECT d, coalesce(100.0 * avg((m.kind = 'audio')::int), 0)
            FROM days LEFT JOIN messages m ON m.direction = 'in' AND m.created_at >= d
                                         AND m.created_at < d + interval '1 day'
            GROUP BY d""", ("voice %",)),
        revenue=await _series(conn, days, """
            SELECT d, count(p.id), coalesce(sum(p.amount_cents), 0) / 100.0
            FROM days LEFT JOIN payments p ON p.kind = 'checkout' AND p.status = 'paid'
                                          AND p.created_at >= d AND p.created_at < d + interval '1 day'
            GROUP BY d""", ("conversions", "revenue")),
        latency=await latency(conn), providers=await providers(conn))


async def latency(conn: Conn, hours: int = 24) -> dict[str, dict[str, float]]:
    """p50/p95 in milliseconds of each stage of a reply over the last `hours`: the model call, the whole turn
    (webhook received to reply queued), and the send (queued to accepted by the provider)."""
    row = await _one(conn, """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY llm_ms) FILTER (WHERE llm_ms > 0),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY llm_ms) FILTER (WHERE llm_ms > 0),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY total_ms)
        FROM turns WHERE created_at > now() - make_interval(hours => %s)""", (hours,))
    send = await _one(conn, """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)
        FROM (SELECT 1000 * extract(epoch FROM p.sent_at - m.created_at) AS ms
              FROM outbound_parts p JOIN messages m ON m.outbound_id = p.outbound_id
              WHERE p.part = 0 AND p.sent_at > now() - make_interval(hours => %s)) s""", (hours,))
    found = {"model": (row[0], row[1]), "turn": (row[2], row[3]), "send": (send[0], send[1])}
    return {stage: {"p50": float(p50 or 0), "p95": float(p95 or 0)} for stage, (p50, p95) in found.items()}


async def providers(conn: Conn, days: int = 7) -> dict[str, dict[str, float]]:
    rows: list[Any] = await (await conn.execute(
        """SELECT provider, count(*), sum(cost_usd) FROM turns
           WHERE created_at > now() - make_interval(days => %s) AND provider NOT IN ('command', 'canned', 'limit')
           GROUP BY provider ORDER BY 2 DESC""", (days,))).fetchall()
    return {str(r[0]): {"turns": float(r[1]), "cost_usd": float(r[2] or 0)} for r in rows}


@dataclass(frozen=True)
class LearnerRow:
    id: uuid.UUID
    handle: str
    name: str | None
    target: str | None
    level: str | None
    plan: str
    messages: int
    last_at: datetime | None


async def learners(conn: Conn, search: str = "", limit: int = 100) -> list[LearnerRow]:
    """Learners, most recently active first; `search` matches a name, an id or a WhatsApp/Twilio/console id."""
    rows: list[Any] = await (await conn.execute(
        """SELECT l.id, coalesce(l.wa_id, l.wa_user_id, l.twilio_id, l.console_id), l.display_name,
                  p.data->>'target_language',
                  coalesce(p.data->>'level_measured', p.data->>'level', p.data->>'level_inferred'),
                  coalesce(e.status, 'free'),
                  (SELECT count(*) FROM messages m WHERE m.learner_id = l.id), l.last_inbound_at
           FROM learners l LEFT JOIN profiles p ON p.learner_id = l.id LEFT JOIN entitlements e ON e.learner_id = l.id
           WHERE %(q)s = '' OR l.display_name ILIKE '%%' || %(q)s || '%%' OR l.id::text LIKE %(q)s || '%%'
              OR concat_ws(' ', l.wa_id, l.wa_user_id, l.twilio_id, l.console_id) LIKE '%%' || %(q)s || '%%'
           ORDER BY l.last_inbound_at DESC NULLS LAST LIMIT %(limit)s""",
        {"q": search.strip(), "limit": limit})).fetchall()
    return [LearnerRow(r[0], str(r[1]), r[2], r[3], r[4], str(r[5]), int(r[6]), r[7]) for r in rows]


@dataclass(frozen=True)
class Detail:
    id: uuid.UUID
    handle: str
    name: str | None
    created_at: datetime
    last_inbound_at: datetime | None
    free_used: int
    profile: dict[str, Any]
    entitlement: dict[str, Any] | None
    memories: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    turns: int
    changes: list[lifecycle.LearnerEvent] = field(default_factory=list)  # number changes, opt-outs, …


async def detail(conn: Conn, learner_id: uuid.UUID) -> Detail | None:
    row: Any = await (await conn.execute(
        """SELECT l.id, coalesce(l.wa_id, l.wa_user_id, l.twilio_id, l.console_id), l.display_name, l.created_at,
                  l.last_inbound_at, l.free_used, coalesce(p.data, '{}'::jsonb),
                  (SELECT count(*) FROM turns t WHERE t.learner_id = l.id)
           FROM learners l LEFT JOIN profiles p ON p.learner_id = l.id WHERE l.id = %s""",
        (learner_id,))).fetchone()
    if row is None:
        return None
    ent: Any = await (await conn.execute(
        "SELECT status, kind, cancel_at_period_end, updated_at FROM entitlements WHERE learner_id = %s",
        (learner_id,))).fetchone()
    memories: list[Any] = await (await conn.execute(
        """SELECT kind, content, source_refs, created_at FROM memories WHERE learner_id = %s
           ORDER BY created_at DESC, id DESC LIMIT 50""", (learner_id,))).fetchall()
    payments: list[Any] = await (await conn.execute(
        """SELECT kind, status, amount_cents, currency, created_at, stripe_object_id FROM payments
           WHERE learner_id = %s ORDER BY created_at DESC LIMIT 50""", (learner_id,))).fetchall()
    return Detail(
        id=row[0], handle=str(row[1]), name=row[2], created_at=row[3], last_inbound_at=row[4],
        free_used=int(row[5]), profile=dict(row[6]), turns=int(row[7]),
        entitlement={"status": ent[0], "kind": ent[1], "cancel_at_period_end": ent[2], "updated_at": ent[3]}
        if ent else None,
        memories=[{"kind": m[0], "content": m[1], "sources": list(m[2] or []), "at": m[3]} for m in memories],
        payments=[{"kind": p[0], "status": p[1], "amount": (p[2] or 0) / 100, "currency": (p[3] or "").upper(),
                   "at": p[4], "stripe": p[5]} for p in payments],
        changes=await lifecycle.events(conn, learner_id))


async def _one(conn: Conn, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row = await (await conn.execute(sql.encode(), params)).fetchone()
    assert row is not None  # aggregates always return a row
    return tuple(row)


async def _series(conn: Conn, days: int, select: str, names: tuple[str, ...]) -> Series:
    """`select` reads from `days(d)`: one row per day (UTC) of the last `days`, and returns d + one column per
    name."""
    query = sql.SQL("""WITH days(d) AS (SELECT generate_series(date_trunc('day', now()) - make_interval(days => %s),
                                                              date_trunc('day', now()), interval '1 day'))
                       SELECT * FROM ({}) s ORDER BY 1""").format(sql.SQL(select))  # `select` is ours, never input
    rows: list[Any] = await (await conn.execute(query, (days - 1,))).fetchall()
    return Series([r[0].date() for r in rows], {name: [float(r[i + 1] or 0) for r in rows]
                                               for i, name in enumerate(names)})
