"""Where progress meets messages: a turn's count and its streak news, a practice prompt's streak line, the
chart kept for the sender. Streak news only ever rides on a free-form message (a reply, or a practice prompt
inside the 24-hour window); outside the window it waits in the profile for the next one."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from charla.channels import media
from charla.core.catalog import say
from charla.progress import chart, goals, report, streaks
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import Profile, week_of


@dataclass
class Counted:
    """What a counted turn adds to its reply: lines of news, and the weekly report if one was waiting."""

    lines: list[str] = field(default_factory=list)
    report: str = ""  # the pending report's text (the chart's caption), "" when none was waiting
    native: str = "en"  # the learner's language


async def count_turn(conn: Conn, learner_id: uuid.UUID, at: datetime, *, messages: int, exercises: int,
                     voice_seconds: float, fallback_native: str) -> Counted:
    """Count the turn into today (inside the turn's transaction) and take what its reply should say."""
    taken: list[str] = []
    pending = [False]

    def change(p: Profile) -> None:
        streaks.record(p, at, messages=messages, exercises=exercises, voice_seconds=voice_seconds)
        taken.extend(streaks.take_news(p))
        pending[0], p.report_pending = p.report_pending, False

    stored = await profile.update(conn, learner_id, change)
    native = stored.native_language or fallback_native
    counted = Counted(goals.news_lines(taken, native), native=native)
    if pending[0] and not streaks.paused_on(stored, streaks.local_day(stored, at)):
        counted.report = report.compose(stored, await report.last_week(conn, learner_id, at), at, native)
    return counted


# streaks.record for a learner with no goal, no news and no report waiting, in one statement: today's counts
# (a new local day starts from zero), the settled day moved up to yesterday; a learner's first turn makes the
# row. The conditions are read on the locked row: a profile that has any of them (or another timezone) is left
# to count_turn.
_FRESH_DAY = (b"jsonb_build_object('day', %(day)s::text, 'messages', %(messages)s::int, 'exercises', "
              b"%(exercises)s::int, 'voice_seconds', %(voice)s::float8)")
_QUIET = b"""
INSERT INTO profiles AS p (learner_id, data)
VALUES (%(learner)s, jsonb_build_object('streak', jsonb_build_object('settled', %(yesterday)s::text, 'today', """ \
    + _FRESH_DAY + b""")))
ON CONFLICT (learner_id) DO UPDATE SET version = p.version + 1, updated_at = now(),
  data = p.data || jsonb_build_object('streak', coalesce(p.data -> 'streak', '{}') || jsonb_build_object(
    'settled', greatest(coalesce(p.data #>> '{streak,settled}', ''), %(yesterday)s::text),
    'today', CASE WHEN p.data #>> '{streak,today,day}' = %(day)s::text
        THEN p.data #> '{streak,today}' || jsonb_build_object(
            'messages', coalesce((p.data #>> '{streak,today,messages}')::int, 0) + %(messages)s::int,
            'exercises', coalesce((p.data #>> '{streak,today,exercises}')::int, 0) + %(exercises)s::int,
            'voice_seconds', coalesce((p.data #>> '{streak,today,voice_seconds}')::float8, 0) + %(voice)s::float8)
        ELSE """ + _FRESH_DAY + b""" END))
WHERE coalesce(p.data -> 'goal', 'null') = 'null' AND coalesce(p.data #> '{streak,news}', '[]') = '[]'
  AND NOT coalesce((p.data ->> 'report_pending')::boolean, false)
  AND coalesce(p.data ->> 'timezone', '') = %(timezone)s::text
RETURNING 1"""


async def count_quietly(conn: Conn, learner_id: uuid.UUID, at: datetime, timezone: str | None, *, messages: int,
                        exercises: int, voice_seconds: float) -> bool:
    """`count_turn` for a learner with no goal (most of them) when nothing waits to be said: one UPDATE, no
    profile read. False (nothing written) when the learner's profile is not such a one: use `count_turn`.
    (`timezone` is the profile's as the turn read it: a learner without a profile row has none.)"""
    today = at.astimezone(profile.zone(timezone)).date()
    row = await (await conn.execute(_QUIET, {
        "learner": learner_id, "day": today.isoformat(), "yesterday": (today - timedelta(days=1)).isoformat(),
        "messages": messages, "exercises": exercises, "voice": float(voice_seconds),
        "timezone": timezone or ""})).fetchone()
    return row is not None


async def prompt_lines(conn: Conn, learner_id: uuid.UUID, at: datetime, native: str, *, free_form: bool) -> list[str]:
    """Settle the streak before a practice prompt; when the prompt goes free-form, the news and what is
    left of today's goal to say with it (a template says nothing: the news waits)."""
    taken: list[str] = []

    def change(p: Profile) -> None:
        streaks.settle(p, at)
        if free_form:
            taken.extend(streaks.take_news(p))

    stored = await profile.update(conn, learner_id, change)
    if not free_form:
        return []
    left = goals.left_today(stored, native)
    return [*goals.news_lines(taken, native), *([left] if left else [])]


def chart_title(native: str) -> str:
    return say("report.chart", native)


async def keep_chart(pool: AsyncConnectionPool, redis: Redis, learner_id: uuid.UUID, at: datetime,
                     fallback_native: str, ttl_s: int) -> str:
    """Render the learner's chart now (off the event loop) and keep it for the sender; returns its token
    (the sender finds it under `img:<token>`, Twilio fetches /media/<token>.png)."""
    async with pool.connection() as conn:
        stored = await profile.load(conn, learner_id)
    native = stored.native_language or fallback_native
    png = await asyncio.to_thread(chart.render, stored, at, native, chart_title(native))
    token = secrets.token_urlsafe(24)
    await media.keep(redis, f"img:{token}", png, ttl_s)
    return token


async def scheduled_report(conn: Conn, learner_id: uuid.UUID, at: datetime, native: str, *,
                           free_form: bool) -> str | None:
    """At a practice slot: this week's report text when it is due and may go now (inside the window); when
    the window is closed it is marked pending instead (it rides on the learner's next reply). None: nothing
    to send now. A learner who did nothing in the last seven days gets no report of zeros (a later slot of
    the week looks again)."""
    stored = await profile.load(conn, learner_id)
    if not report.due(stored, at):
        return None
    week = await report.last_week(conn, learner_id, at)
    if not week.messages and not week.exercises:
        return None

    def mark(p: Profile) -> None:
        p.report_week = week_of(at, p.timezone)
        p.report_pending = not free_form

    stored = await profile.update(conn, learner_id, mark)
    if not free_form:
        return None
    return report.compose(stored, week, at, stored.native_language or native)

