"""The learner profile: one schema-validated, size-bounded JSONB document per learner.

Every fact set from a conversation records where it came from (message ids) and when it was last
confirmed. Counts (errors, vocabulary use) are counted from structured corrections, never guessed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

Conn = AsyncConnection[tuple[object, ...]]

CEFR = ("A1", "A2", "B1", "B2", "C1", "C2")
MAX_WORDS = 500  # least recently seen words are pruned beyond this
MAX_EXAMPLES = 3  # recent examples kept per error category
MAX_WEEKS = 12  # ISO weeks of error counts kept per category (the weekly report's chart)


def now() -> datetime:
    return datetime.now(UTC)


class Provenance(BaseModel):
    message_ids: list[str] = Field(default_factory=list)
    confirmed_at: datetime = Field(default_factory=now)


class Example(BaseModel):
    original: str
    corrected: str
    message_id: str = ""


class ErrorStat(BaseModel):
    count: int = 0
    last_seen: datetime = Field(default_factory=now)
    examples: list[Example] = Field(default_factory=list)
    weeks: dict[str, int] = Field(default_factory=dict)  # ISO week ("2030-W23", learner's time) -> count


def week_of(at: datetime, timezone: str | None) -> str:
    """The ISO week `at` falls in, in the learner's timezone ("2030-W23")."""
    year, week, _ = at.astimezone(zone(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


class Word(BaseModel):
    translation: str = ""
    first_seen: datetime = Field(default_factory=now)
    last_seen: datetime = Field(default_factory=now)
    times: int = 0
    strength: float = 0.0  # 0 new … 1 known; raised by correct use, lowered by corrections


class PracticeTime(BaseModel):
    time: str  # "HH:MM" in the learner's timezone
    days: list[int] = Field(default_factory=lambda: list(range(7)))  # 0 = Monday


class Goal(BaseModel):
    """The learner's daily goal: `amount` messages, exercises (practice answers) or minutes of voice."""

    kind: str = "messages"  # messages | exercises | voice (minutes)
    amount: int = 1


class Day(BaseModel):
    """What the learner did on one local day."""

    day: str = ""  # ISO date in the learner's timezone
    messages: int = 0
    exercises: int = 0
    voice_seconds: float = 0.0
    met: bool = False


class Streak(BaseModel):
    """Days in a row the goal was met (charla.progress.streaks)."""

    current: int = 0
    best: int = 0
    settled: str = ""  # the last complete local day accounted for (met, frozen, paused or missed)
    freezes: list[str] = Field(default_factory=list)  # ISO weeks a freeze was used in (the last few)
    news: list[str] = Field(default_factory=list)  # said on the next free-form message: met:N, freeze, milestone:N
    today: Day = Field(default_factory=Day)


class Profile(BaseModel):
    name: str | None = None
    level: str | None = None  # declared CEFR level
    level_inferred: str | None = None
    native_language: str | None = None
    target_language: str | None = None
    timezone: str | None = None
    goals: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    practice: list[PracticeTime] = Field(default_factory=list)
    reminders_paused: bool = False
    vocabulary: dict[str, Word] = Field(default_factory=dict)
    errors: dict[str, ErrorStat] = Field(default_factory=dict)
    provenance: dict[str, Provenance] = Field(default_factory=dict)
    applied_turn: int = 0  # the last turn counted into errors and vocabulary (each is counted once)
    summarized_turn: int = 0  # the last turn covered by a model summary (memories and facts)
    payment_status: str = "free"  # free | trial | active | past_due | cancelled | refused (payments issue)
    paused_until: datetime | None = None
    goal: Goal | None = None  # the daily goal (no goal: no streak)
    streak: Streak = Field(default_factory=Streak)
    report_week: str = ""  # the ISO week of the last scheduled weekly report
    report_pending: bool = False  # due while the window was closed: it rides on the next reply

    def confirm(self, fact: str, *message_ids: str) -> None:
        """Record that `fact` was set or confirmed now, by these messages."""
        self.provenance[fact] = Provenance(message_ids=list(message_ids))

    def count_error(self, category: str, example: Example, at: datetime) -> None:
        stat = self.errors.setdefault(category, ErrorStat(last_seen=at))
        stat.count += 1
        stat.last_seen = at
        stat.examples = [*stat.examples, example][-MAX_EXAMPLES:]
        week = week_of(at, self.timezone)
        stat.weeks[week] = stat.weeks.get(week, 0) + 1
        stat.weeks = dict(sorted(stat.weeks.items())[-MAX_WEEKS:])

    def add_word(self, word: str, translation: str, at: datetime) -> None:
        """A word the tutor introduced (not used by the learner yet)."""
        self.vocabulary[word.lower()] = Word(translation=translation, first_seen=at, last_seen=at)
        self._prune()

    def see_word(self, word: str, translation: str, at: datetime, *, correct: bool) -> None:
        """The learner used `word` (correctly unless a correction covered it)."""
        entry = self.vocabulary.setdefault(word.lower(), Word(translation=translation, first_seen=at))
        entry.times += 1
        entry.last_seen = at
        entry.translation = translation or entry.translation
        entry.strength = min(1.0, entry.strength + 0.1) if correct else max(0.0, entry.strength - 0.2)
        self._prune()

    def _prune(self) -> None:
        if len(self.vocabulary) > MAX_WORDS:
            oldest = sorted(self.vocabulary, key=lambda w: self.vocabulary[w].last_seen)
            for stale in oldest[: len(self.vocabulary) - MAX_WORDS]:
                del self.vocabulary[stale]

    def top_errors(self, n: int = 3) -> list[tuple[str, ErrorStat]]:
        return sorted(self.errors.items(), key=lambda kv: (-kv[1].count, kv[0]))[:n]


def zone(name: str | None) -> ZoneInfo:
    """The learner's timezone (UTC when unknown or not a valid IANA name)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def load(conn: Conn, learner_id: uuid.UUID, *, for_update: bool = False) -> Profile:
    query = b"SELECT data FROM profiles WHERE learner_id = %s" + (b" FOR UPDATE" if for_update else b"")
    row = await (await conn.execute(query, (learner_id,))).fetchone()
    return Profile.model_validate(row[0]) if row else Profile()


async def save(conn: Conn, learner_id: uuid.UUID, profile: Profile) -> None:
    await conn.execute(
        """INSERT INTO profiles (learner_id, data) VALUES (%s, %s)
           ON CONFLICT (learner_id) DO UPDATE SET data = EXCLUDED.data, version = profiles.version + 1,
                                                  updated_at = now()""",
        (learner_id, Jsonb(profile.model_dump(mode="json", exclude_defaults=True))))


async def update(conn: Conn, learner_id: uuid.UUID, change: Callable[[Profile], None]) -> Profile:
    """Apply `change` to the learner's profile under a row lock (call inside a transaction)."""
    await conn.execute("INSERT INTO profiles (learner_id) VALUES (%s) ON CONFLICT DO NOTHING", (learner_id,))
    profile = await load(conn, learner_id, for_update=True)
    change(profile)
    await save(conn, learner_id, profile)
    return profile
