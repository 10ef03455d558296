"""What the review, pause and wordbook commands do: a tapped FSRS grade, `pause practice for 2 weeks`,
`save <word>` (or its choice), `my words` and `export my words` (charla.tutor.review, charla.tutor.wordbook)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from charla.core.catalog import N_, say
from charla.core.events import Choice, utcnow
from charla.core.settings import Settings
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import zone
from charla.tutor import review, wordbook
from charla.tutor.commands import Command

NAMES = frozenset({"grade", "pause", "save", "save_tap", "my_words", "export_words"})
_SAVED = {"added": N_("wordbook.added"), "known": N_("wordbook.known"), "full": N_("wordbook.full"),
          "invalid": N_("wordbook.invalid")}


@dataclass
class Done:
    """What the command answers: text, choices, and files sent after it as (reply part, caption)."""

    text: str
    choices: list[Choice] = field(default_factory=list)
    documents: list[tuple[str, str]] = field(default_factory=list)


async def run(conn: Conn, settings: Settings, learner_id: uuid.UUID, command: Command, native: str) -> Done:
    """Carry out one of NAMES inside the turn's transaction."""
    now, name = utcnow(), command.name
    if name == "grade":
        graded = await review.grade(conn, learner_id, command.value, now, cap=settings.review_daily_cap,
                                    easy=settings.review_easy, languages=(native, settings.default_target_language))
        return Done(graded.text, graded.choices)
    if name == "pause":
        return Done(await _pause(conn, learner_id, int(command.value), now, native))
    if name in ("save", "save_tap"):
        outcome = await wordbook.save(conn, learner_id, command.value, "command" if name == "save" else "choice", now,
                                      wordbook.MAX_WORDS)
        return Done(say(_SAVED[outcome], native, word=wordbook.clean(command.value) or command.value,
                        limit=wordbook.MAX_WORDS))
    found = await wordbook.entries(conn, learner_id, now)
    if name == "my_words" or not found:
        return Done(wordbook.listing(found, native))
    return Done(say("wordbook.exported", native, count=len(found)),
                documents=[("words_apkg", say("wordbook.apkg_caption", native)),
                           ("words_csv", say("wordbook.csv_caption", native))])


async def _pause(conn: Conn, learner_id: uuid.UUID, days: int, now: datetime, native: str) -> str:
    """Pause practice prompts and the streak (the profile's `paused_until`, read by charla.progress.streaks)."""
    resume = await review.pause(conn, learner_id, days, now)
    learner = await profile.load(conn, learner_id)
    until = resume or review.resume_at(now, days, learner.timezone)
    await profile.update(conn, learner_id, lambda p: setattr(p, "paused_until", until))
    if resume is None:
        return say("pause.streak_only", native, days=days, until=f"{until.astimezone(zone(learner.timezone)):%Y-%m-%d}")
    row = await (await conn.execute("SELECT timezone, local_time FROM schedules WHERE learner_id = %s LIMIT 1",
                                    (learner_id,))).fetchone()
    local = resume.astimezone(zone(str(row[0]) if row else None))
    return say("pause.done", native, days=days, until=f"{local:%Y-%m-%d}", time=str(row[1]) if row else "")
