"""The learner profile: one schema-validated, size-bounded JSONB document per learner.

Every fact set from a conversation records where it came from (message ids) and when it was last
confirmed. Counts (errors, vocabulary use) are counted from structured corrections, never guessed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

Conn = AsyncConnection[tuple[object, ...]]

CEFR = ("A1", "A2", "B1", "B2", "C1", "C2")
MAX_WORDS = 500  # least recently seen words are pruned beyond this
MAX_EXAMPLES = 3  # recent examples kept per error category
MAX_SCORES, MAX_MISSED, MAX_SEEN = 20, 50, 40  # listening results kept
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
    sentence: str = ""  # the learner's sentence it was in: what practice asks them to fix ("" when too long)


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


class Preferences(BaseModel):
    """How the learner wants to be tutored (`settings`; charla.journey.preferences)."""

    strictness: Literal[1, 2, 3] = 2  # 1: only mistakes that break meaning, 2: the usual, 3: everything
    explanations: Literal["native", "target", "mixed"] = "native"  # mixed: the target language from B2 up
    length: Literal["short", "normal", "long"] = "normal"
    voice: bool = True  # voice notes with replies (on top of CHARLA_VOICE_REPLIES)


class MissionRecord(BaseModel):
    """A roleplay mission the learner played (charla.journey.missions): how often, its scores, whether they
    ever reached its goal."""

    times: int = 0
    best: int = 0
    last: int = 0
    reached: bool = False
    at: datetime = Field(default_factory=now)


class Listening(BaseModel):
    """Dictation and comprehension results (charla.journey.dictation and .listening), bounded."""

    dictations: int = 0
    dictation_scores: list[int] = Field(default_factory=list)  # the latest, in percent
    passages: int = 0
    passage_scores: list[int] = Field(default_factory=list)  # the latest, in percent
    missed: dict[str, int] = Field(default_factory=dict)  # words missed in dictations, and how often
    seen: list[str] = Field(default_factory=list)  # sentences and passages done lately (not repeated soon)

    def dictated(self, sentence: str, score: int, missed: list[str]) -> None:
        self.dictations += 1
        self.dictation_scores = [*self.dictation_scores, score][-MAX_SCORES:]
        for word in missed:
            self.missed[word] = self.missed.get(word, 0) + 1
        self.missed = dict(sorted(self.missed.items(), key=lambda kv: -kv[1])[:MAX_MISSED])
        self.saw(sentence)

    def answered(self, passage: str, score: int) -> None:
        self.passages += 1
        self.passage_scores = [*self.passage_scores, score][-MAX_SCORES:]
        self.saw(passage)

    def saw(self, item: str) -> None:
        self.seen = [*(s for s in self.seen if s != item), item][-MAX_SEEN:]


class SpeakingStat(BaseModel):
    tries: int = 0
    misses: int = 0


class Speaking(BaseModel):
    """Read-aloud results: per word and per sound (espeak-ng phoneme) how often it was tried and missed."""

    words: dict[str, SpeakingStat] = Field(default_factory=dict)
    sounds: dict[str, int] = Field(default_factory=dict)  # expected phoneme -> times said differently
    readings: int = 0
    best: int = 0  # the best overall score (0..100)
    last: int = 0  # the latest overall score
    recent: list[str] = Field(default_factory=list)  # sentences read lately

    def record(self, sentence: str, overall: int, words: dict[str, bool], sounds: list[str]) -> None:
        """One scored reading: each reference word with whether it was said right, the sounds missed."""
        self.readings += 1
        self.best, self.last = max(self.best, overall), overall
        self.recent = [*[s for s in self.recent if s != sentence], sentence][-MAX_EXAMPLES * 3:]
        for word, right in words.items():
            stat = self.words.setdefault(word, SpeakingStat())
            stat.tries, stat.misses = stat.tries + 1, stat.misses + (not right)
        for sound in sounds:
            self.sounds[sound] = self.sounds.get(sound, 0) + 1
        if len(self.words) > MAX_WORDS:
            for word in sorted(self.words, key=lambda w: self.words[w].tries)[: len(self.words) - MAX_WORDS]:
                del self.words[word]


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
    level_measured: str | None = None  # by the placement (charla.journey.placement)
    level_measured_at: datetime | None = None
    placement_offered: bool = False  # the one-time offer at onboarding was made
    preferences: Preferences = Field(default_factory=Preferences)
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
    missions: dict[str, MissionRecord] = Field(default_factory=dict)  # "<target>/<mission id>" -> its record
    listening: Listening = Field(default_factory=Listening)  # dictation and comprehension (issue 23)
    speaking: Speaking = Field(default_factory=Speaking)  # read-aloud results (issue 23)
    paused_until: datetime | None = None  # practice and streaks paused until then (`pause practice for 2 weeks`)
    goal: Goal | None = None  # the daily goal (no goal: no streak)
    streak: Streak = Field(default_factory=Streak)
    report_week: str = ""  # the ISO week of the last scheduled weekly report
    report_pending: bool = False  # due while the window was closed: it rides on the next reply

    def confirm(self, fact: str, *message_ids: str) -> None:
        """Record that `fact` was set or confirmed now, by these messages."""
        self.provenance[fact] = Provenance(message_ids=list(message_ids))

    def record_mission(self, key: str, score: int, reached: bool, at: datetime) -> None:
        """A mission played to its end (or stopped): its score and whether its goal was reached."""
        record = self.missions.setdefault(key, MissionRecord(at=at))
        record.times += 1
        record.best, record.last = max(record.best, score), score
        record.reached, record.at = record.reached or reached, at

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


_EVIDENCE = ("level_inferred", "level", "level_measured")  # on the same instant, the later one wins
_NEVER = datetime.min.replace(tzinfo=UTC)


def level_to_use(profile: Profile) -> str | None:
    """The level the tutor pitches at: the most recent evidence of declared, inferred and measured (each
    dated by when it was last set or confirmed); None when there is none."""
    dated = [(_dated(profile, fact), rank, value) for rank, fact in enumerate(_EVIDENCE)
             if (value := getattr(profile, fact))]
    return max(dated)[2] if dated else None


def _dated(profile: Profile, fact: str) -> datetime:
    if fact == "level_measured" and profile.level_measured_at is not None:
        return profile.level_measured_at
    return profile.provenance[fact].confirmed_at if fact in profile.provenance else _NEVER


def explanation_language(profile: Profile, native: str, target: str) -> str:
    """The language corrections are explained in, by the learner's preference ("mixed": the target language
    from B2 up, their own below)."""
    chosen = profile.preferences.explanations
    if chosen == "mixed":
        return target if (level_to_use(profile) or "A1") in ("B2", "C1", "C2") else native
    return target if chosen == "target" else native


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
    locked = b"SELECT data FROM profiles WHERE learner_id = %s FOR UPDATE"
    row = await (await conn.execute(locked, (learner_id,))).fetchone()
    if row is None:  # a lock needs a row: made once per learner (so most updates take two statements, not three)
        await conn.execute("INSERT INTO profiles (learner_id) VALUES (%s) ON CONFLICT DO NOTHING", (learner_id,))
        row = await (await conn.execute(locked, (learner_id,))).fetchone()
    profile = Profile.model_validate(row[0]) if row else Profile()
    change(profile)
    await save(conn, learner_id, profile)
    return profile
