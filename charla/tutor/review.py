"""Review that fits chat: FSRS grades as WhatsApp choices (Again / Hard / Good buttons, or a list with Easy),
a daily review cap, "N due today", and a timed pause that ends by itself at the learner's local midnight.

A grade id (`grade:<prompt id>:<grade>`) is a capability like the others (agents/choices.py): it acts only
while its prompt is that learner's, sent, ungraded and of the past day. A tapped grade reviews the card, and
while the learner's local day has room under the cap the next due card follows in the same reply (an answer
inside the window, never an extra message).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from fsrs import Rating
from psycopg.types.json import Jsonb

from charla.core.catalog import N_, say
from charla.core.events import Choice
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import zone
from charla.tutor import practice
from charla.tutor.practice import CardRow

GRADES = {"again": Rating.Again, "hard": Rating.Hard, "good": Rating.Good, "easy": Rating.Easy}
_TITLES = {"again": N_("grade.again"), "hard": N_("grade.hard"), "good": N_("grade.good"), "easy": N_("grade.easy")}


@dataclass
class Graded:
    """What a tapped grade answers: the next review time, and the next due card with its grades, if any."""

    text: str
    choices: list[Choice] = field(default_factory=list)


def grade_choices(prompt_id: int, native: str, *, easy: bool) -> list[Choice]:
    """Three reply buttons, or four (with Easy) that WhatsApp shows as a list."""
    names = ["again", "hard", "good", *(["easy"] if easy else [])]
    return [Choice(id=f"grade:{prompt_id}:{name}", title=say(_TITLES[name], native)) for name in names]


def parse_grade(choice: str) -> tuple[int, Rating] | None:
    """(prompt id, rating) of a grade id, None when it is not one."""
    parts = choice.split(":")
    if len(parts) != 3 or parts[0] != "grade" or not parts[1].isdigit() or len(parts[1]) > 18:
        return None
    rating = GRADES.get(parts[2])
    return None if rating is None else (int(parts[1]), rating)


def day_start(now: datetime, timezone: str | None) -> datetime:
    """The learner's local midnight that began their current day, in UTC."""
    tz = zone(timezone)
    return datetime.combine(now.astimezone(tz).date(), time(), tzinfo=tz).astimezone(UTC)


def due_today(cards: list[CardRow], now: datetime, timezone: str | None) -> int:
    """Cards due before the learner's next local midnight."""
    tz = zone(timezone)
    end = datetime.combine(now.astimezone(tz).date() + timedelta(days=1), time(), tzinfo=tz)
    return sum(1 for card in cards if card.due < end)


def reviewed_today(answered: list[datetime], now: datetime, timezone: str | None) -> int:
    start = day_start(now, timezone)
    return sum(1 for at in answered if at >= start)


def resume_at(now: datetime, days: int, timezone: str | None) -> datetime:
    """The local midnight `days` calendar days after today, in UTC (a DST change between keeps it midnight)."""
    tz = zone(timezone)
    return datetime.combine(now.astimezone(tz).date() + timedelta(days=days), time(), tzinfo=tz).astimezone(UTC)


async def is_open(conn: Conn, learner_id: uuid.UUID, choice: str) -> bool:
    """Whether `choice` was offered to this learner in the past day (by a prompt or a reply) and grades one of
    their prompts still waiting for its grade."""
    parsed = parse_grade(choice)
    if parsed is None or await _open(conn, learner_id, parsed[0]) is None:
        return False
    row = await (await conn.execute(
        """SELECT EXISTS (SELECT 1 FROM messages WHERE learner_id = %s AND direction = 'out'
             AND created_at > now() - interval '24 hours' AND payload->'choices' @> %s)""",
        (learner_id, Jsonb([{"id": choice}])))).fetchone()
    return bool(row and row[0])


async def _open(conn: Conn, learner_id: uuid.UUID, prompt_id: int) -> str | None:
    """The item of this learner's prompt `prompt_id` while it waits for a grade (locked until the transaction ends)."""
    row = await (await conn.execute(
        """SELECT item FROM practice_prompts WHERE id = %s AND learner_id = %s AND kind IN ('practice', 'review')
             AND status = 'queued' AND answered_at IS NULL AND item IS NOT NULL
             AND created_at > now() - interval '24 hours' FOR UPDATE""",
        (prompt_id, learner_id))).fetchone()
    return None if row is None else str(row[0])


async def grade(conn: Conn, learner_id: uuid.UUID, choice: str, now: datetime, *, cap: int, easy: bool,
                languages: tuple[str, str]) -> Graded:
    """Apply a tapped grade to its FSRS card; then the next due card while today's reviews stay under `cap`.
    `languages`: the learner's native language and the target language to assume when they named none."""
    native, default_target = languages
    parsed = parse_grade(choice)
    item = await _open(conn, learner_id, parsed[0]) if parsed else None
    if parsed is None or item is None:  # graded meanwhile (a second tap)
        return Graded(say("review.done_already", native))
    due = await practice.review(conn, learner_id, item, parsed[1], now)
    await practice.answered(conn, parsed[0])
    learner = await profile.load(conn, learner_id)
    lines = [_graded_line(item, learner, due - now, native)]
    cards = [c for c in await practice.cards(conn, learner_id) if c.due <= now]
    done = reviewed_today(await answered_since(conn, learner_id, now), now, learner.timezone)
    if not cards:
        return Graded("\n".join([*lines, say("review.all_done", native)]))
    if done >= cap:
        return Graded("\n".join([*lines, say("review.cap", native, cap=cap, left=len(cards))]))
    card = min(cards, key=lambda c: c.due)
    body = "\n".join([say("review.next", native, left=len(cards)),
                      practice.exercise(card.item, learner, native, backed_off=False,
                                        target=learner.target_language or default_target).split("\n", 1)[-1]])
    prompt_id = await _chain(conn, learner_id, card.item, body, now)
    return Graded("\n\n".join(["\n".join(lines), body]), grade_choices(prompt_id, native, easy=easy))


def _graded_line(item: str, learner: profile.Profile, wait: timedelta, native: str) -> str:
    days = max(0, round(wait.total_seconds() / 86400))
    when = say("review.in_days", native, days=days) if days else say("review.today", native)
    if item.startswith("word:"):
        word = item.removeprefix("word:")
        entry = learner.vocabulary.get(word)
        return say("review.graded_word", native, word=word, translation=entry.translation if entry else "", when=when)
    return say("review.graded", native, when=when)


async def answered_since(conn: Conn, learner_id: uuid.UUID, now: datetime) -> list[datetime]:
    """When the learner's prompts of the past two days were answered (for today's count, in any timezone)."""
    rows = await (await conn.execute(
        "SELECT answered_at FROM practice_prompts WHERE learner_id = %s AND answered_at > %s",
        (learner_id, now - timedelta(days=2)))).fetchall()
    return [r[0] for r in rows]  # type: ignore[misc]


async def _chain(conn: Conn, learner_id: uuid.UUID, item: str, body: str, now: datetime) -> int:
    row = await (await conn.execute(
        """INSERT INTO practice_prompts (learner_id, kind, slot_at, status, via, item, body)
           VALUES (%s, 'review', %s, 'queued', 'text', %s, %s)
           ON CONFLICT (learner_id, kind, slot_at) DO UPDATE SET item = EXCLUDED.item RETURNING id""",
        (learner_id, now, item, body))).fetchone()
    assert row is not None
    return int(str(row[0]))


async def pause(conn: Conn, learner_id: uuid.UUID, days: int, now: datetime) -> datetime | None:
    """No practice until local midnight `days` days from today; the first prompt after is the learner's
    usual local time that day (or the next practice day). Returns the resume instant, None without a schedule."""
    rows = await (await conn.execute("SELECT id, local_time, days, timezone FROM schedules WHERE learner_id = %s",
                                     (learner_id,))).fetchall()
    resume = None
    for row in rows:
        resume = resume_at(now, days, str(row[3]))
        following = practice.next_occurrence(str(row[1]), list(row[2]), str(row[3]),  # type: ignore[call-overload]
                                             resume - timedelta(microseconds=1))
        await conn.execute("UPDATE schedules SET paused = false, paused_until = %s, next_run_at = %s, "
                           "updated_at = now() WHERE id = %s", (resume, following, row[0]))
    return resume
