"""The weekly progress report: what the learner did and how their mistakes move, in a few lines (the caption
of its chart, charla.progress.chart), in their language.

Sent once a week at the learner's practice time when the 24-hour window is open; when it is closed then, the
practice template goes out alone and the report rides on the learner's next reply (`report_pending`). Any
time on `my progress` / `mi progreso`. Never while practice is paused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from charla.core.catalog import say
from charla.progress import streaks
from charla.store.messages import Conn
from charla.store.profile import Profile, level_to_use, week_of
from charla.tutor.prompt import category_name

KNOWN = 0.5  # a word this strong counts as learned
MAX_NAMED = 3  # categories named per line


@dataclass(frozen=True)
class Week:
    """The learner's last seven days, counted from what was recorded."""

    messages: int
    exercises: int


async def last_week(conn: Conn, learner_id: uuid.UUID, at: datetime) -> Week:
    """Messages answered and practice prompts answered in the seven days before `at`."""
    row = await (await conn.execute(
        """SELECT (SELECT count(*) FROM messages WHERE learner_id = %(id)s AND direction = 'in'
                     AND created_at > %(since)s AND created_at <= %(at)s),
                  (SELECT count(*) FROM practice_prompts WHERE learner_id = %(id)s
                     AND answered_at > %(since)s AND answered_at <= %(at)s)""",
        {"id": learner_id, "since": at - timedelta(days=7), "at": at})).fetchone()
    return Week(int(str(row[0])), int(str(row[1]))) if row else Week(0, 0)


def trends(p: Profile, at: datetime) -> tuple[list[str], list[str]]:
    """Categories improving (fewer mistakes last complete week than the week before) and recurring (as many
    or more), most frequent first."""
    last, before = week_of(at - timedelta(weeks=1), p.timezone), week_of(at - timedelta(weeks=2), p.timezone)
    improving, recurring = [], []
    for category, stat in p.top_errors(len(p.errors)):
        now_n, then_n = stat.weeks.get(last, 0), stat.weeks.get(before, 0)
        if then_n > now_n:
            improving.append(category)
        elif now_n:
            recurring.append(category)
    return improving, recurring


def words(p: Profile, at: datetime) -> tuple[int, int]:
    """New words in the last seven days, and words learned (strong enough) in all."""
    since = at - timedelta(days=7)
    return (sum(1 for w in p.vocabulary.values() if w.first_seen > since),
            sum(1 for w in p.vocabulary.values() if w.strength >= KNOWN))


def compose(p: Profile, week: Week, at: datetime, native: str) -> str:
    """The report's text (short: it is an image caption, at most 1024 characters)."""
    improving, recurring = trends(p, at)
    new, known = words(p, at)
    lines = [say("report.title", native),
             say("report.activity", native, messages=week.messages, exercises=week.exercises),
             say("report.words", native, new=new, known=known)]
    if improving:
        lines.append(say("report.improving", native, categories=_names(improving, native)))
    if recurring:
        lines.append(say("report.recurring", native, categories=_names(recurring, native)))
    if p.goal is not None:
        streaks.settle(p, at)
        lines.append(say("report.streak", native, days=p.streak.current, best=p.streak.best))
    lines.append(say("report.level", native, level=level_to_use(p) or "–"))
    return "\n".join(lines)[:1024]


def _names(categories: list[str], native: str) -> str:
    return ", ".join(f"*{category_name(c, native)}*" for c in categories[:MAX_NAMED])


def due(p: Profile, at: datetime) -> bool:
    """Whether this week's scheduled report has not gone out yet (never while paused)."""
    return not streaks.paused_on(p, streaks.local_day(p, at)) and p.report_week != week_of(at, p.timezone)
