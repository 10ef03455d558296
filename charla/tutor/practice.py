"""Spaced-repetition practice: when a learner's next prompt is due (their local time, DST included), what
to practise (FSRS over their error categories and words, weakest first), and the prompts' records."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import phonenumbers
from fsrs import Card, Rating, Scheduler
from phonenumbers import timezone as phone_zones
from psycopg.types.json import Jsonb

from charla.core.catalog import N_, say
from charla.store.messages import Conn
from charla.store.profile import Profile, zone
from charla.tutor import taxonomy
from charla.tutor.prompt import category_name

FSRS = Scheduler()
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
MAX_SENTENCE = 140  # characters of a learner's sentence quoted back in a practice prompt

# Grammar tables sent with an exercise on a category of a target language, as message ids: formatted text
# (WhatsApp monospace).
GRAMMAR_TABLES = {
    "es": {"ser_estar": N_("grammar.ser_estar"), "preterite_imperfect": N_("grammar.preterite_imperfect"),
           "subjunctive": N_("grammar.subjunctive"), "por_para": N_("grammar.por_para"),
           "gender_agreement": N_("grammar.gender_agreement")},
    "en": {"articles": N_("grammar.en.articles"), "prepositions": N_("grammar.en.prepositions"),
           "phrasal_verbs": N_("grammar.en.phrasal_verbs"), "present_perfect": N_("grammar.en.present_perfect"),
           "past_forms": N_("grammar.en.past_forms"), "third_person_s": N_("grammar.en.third_person_s"),
           "question_order": N_("grammar.en.question_order"),
           "countable_uncountable": N_("grammar.en.countable_uncountable"),
           "false_friend": N_("grammar.en.false_friend")}}


def next_occurrence(local_time: str, days: list[int], timezone: str, after: datetime) -> datetime:
    """The first instant strictly after `after` that is `local_time` on one of `days` (0 = Monday) in
    `timezone`, in UTC. Wall-clock time is kept across DST changes (19:00 stays 19:00)."""
    hour, minute = (int(part) for part in local_time.split(":"))
    tz = zone(timezone)
    start = after.astimezone(tz).date()
    for offset in range(15):
        day: date = start + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        candidate = datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)
        if candidate > after:
            return candidate
    raise ValueError(f"no practice day in {days}")


def guess_timezone(phone: str | None) -> str | None:
    """A timezone from the phone number's country (and area, where it tells), or None."""
    if not phone:
        return None
    try:
        zones = [z for z in phone_zones.time_zones_for_number(phonenumbers.parse("+" + phone.lstrip("+")))
                 if z != "Etc/Unknown"]
    except phonenumbers.NumberParseException:
        return None
    return zones[-1] if zones else None


@dataclass(frozen=True)
class CardRow:
    item: str
    due: datetime


def pick_item(profile: Profile, cards: list[CardRow], now: datetime) -> str | None:
    """What to practise: a due card (earliest first), else a new item: error categories by how often they
    occur (the weakest spot first), then the weakest words."""
    due = sorted((c for c in cards if c.due <= now), key=lambda c: c.due)
    if due:
        return due[0].item
    known = {c.item for c in cards}
    for category, _ in profile.top_errors(len(profile.errors)):
        if f"error:{category}" not in known:
            return f"error:{category}"
    words = sorted(profile.vocabulary.items(), key=lambda kv: (kv[1].strength, kv[0]))
    for word, _ in words:
        if f"word:{word}" not in known:
            return f"word:{word}"
    return min(cards, key=lambda c: c.due).item if cards else None


def sentence_of(text: str, fragment: str) -> str:
    """The sentence of the learner's `text` that holds a corrected `fragment` (what practice asks them to fix
    again), or "" when none does or it is too long for a prompt."""
    if not fragment.strip():
        return ""
    for sentence in _SENTENCE_END.split(text.strip()):
        if fragment.casefold() in sentence.casefold():
            return sentence.strip() if len(sentence) <= MAX_SENTENCE else ""
    return ""


def exercise(item: str | None, profile: Profile, native: str, backed_off: bool, target: str) -> str:
    """The prompt's text: the learner's own mistake to fix (else the category's drill in `target`, the
    language learnt), or a word to use, short and phone-sized, with the category's grammar table if any."""
    lines = [say("practice.title", native)] + ([say("practice.backed_off", native)] if backed_off else [])
    if item and item.startswith("error:"):
        category = item.removeprefix("error:")
        stat = profile.errors.get(category)
        name = category_name(category, native)
        last = stat.examples[-1] if stat and stat.examples else None
        wrong = (last.sentence or last.original) if last else taxonomy.drill(category, target)
        if wrong:
            lines.append(say("practice.fix", native, name=name, wrong=wrong))
        else:
            lines.append(say("practice.use_category", native, name=name))
        if table := GRAMMAR_TABLES.get(target, {}).get(category):
            lines.append(f"```\n{say(table, native)}\n```")
    elif item and item.startswith("word:"):
        lines.append(say("practice.use_word", native, word=item.removeprefix("word:")))
    else:
        lines.append(say("practice.open", native))
    return "\n".join(lines)


def rating_for(item: str, corrections: list[dict[str, object]]) -> Rating:
    """Again when the answer repeated the practised mistake (or misused the word), Good otherwise."""
    if item.startswith("error:"):
        wrong = any(str(c.get("category")) == item.removeprefix("error:") for c in corrections)
    else:
        word = item.removeprefix("word:").lower()
        wrong = any(word in str(c.get("original", "")).lower() for c in corrections)
    return Rating.Again if wrong else Rating.Good


async def cards(conn: Conn, learner_id: uuid.UUID) -> list[CardRow]:
    rows = await (await conn.execute("SELECT item, due FROM practice_cards WHERE learner_id = %s",
                                     (learner_id,))).fetchall()
    return [CardRow(str(r[0]), r[1]) for r in rows]  # type: ignore[arg-type]


async def review(conn: Conn, learner_id: uuid.UUID, item: str, rating: Rating, now: datetime) -> datetime:
    """Update the item's FSRS card with this answer; returns when it is due next."""
    row = await (await conn.execute("SELECT card FROM practice_cards WHERE learner_id = %s AND item = %s FOR UPDATE",
                                    (learner_id, item))).fetchone()
    card = Card.from_dict(row[0]) if row else Card(due=now)  # type: ignore[arg-type]
    card, _ = FSRS.review_card(card, rating, now)
    await conn.execute(
        """INSERT INTO practice_cards (learner_id, item, card, due) VALUES (%s, %s, %s, %s)
           ON CONFLICT (learner_id, item) DO UPDATE SET card = EXCLUDED.card, due = EXCLUDED.due""",
        (learner_id, item, Jsonb(card.to_dict()), card.due))
    return card.due


async def set_schedule(conn: Conn, learner_id: uuid.UUID, local_time: str, days: list[int], timezone: str,
                       now: datetime) -> datetime:
    """Replace the learner's practice times with this one; returns the first prompt's instant."""
    first = next_occurrence(local_time, days, timezone, now)
    await conn.execute("DELETE FROM schedules WHERE learner_id = %s", (learner_id,))
    await conn.execute(
        """INSERT INTO schedules (learner_id, rule, timezone, local_time, days, next_run_at)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (learner_id, f"{local_time} {','.join(map(str, days))}", timezone, local_time, days, first))
    return first


async def set_paused(conn: Conn, learner_id: uuid.UUID, paused: bool, now: datetime) -> None:
    """Pause, or resume from the next occurrence after now (no burst of missed prompts)."""
    await conn.execute("UPDATE schedules SET paused = %s, paused_until = NULL, updated_at = now() "
                       "WHERE learner_id = %s", (paused, learner_id))
    if not paused:
        await reschedule(conn, learner_id, None, now)


async def reschedule(conn: Conn, learner_id: uuid.UUID, timezone: str | None, now: datetime) -> None:
    """Recompute next runs (after a timezone change or a resume); a timed pause still holds until its end."""
    rows = await (await conn.execute(
        "SELECT id, local_time, days, timezone, paused_until FROM schedules WHERE learner_id = %s",
        (learner_id,))).fetchall()
    for row in rows:
        tz = timezone or str(row[3])
        until: datetime | None = row[4]  # type: ignore[assignment]
        after = max(now, until - timedelta(microseconds=1)) if until else now
        following = next_occurrence(str(row[1]), list(row[2]), tz, after)  # type: ignore[call-overload]
        await conn.execute("UPDATE schedules SET timezone = %s, next_run_at = %s WHERE id = %s",
                           (tz, following, row[0]))


async def open_prompt(conn: Conn, learner_id: uuid.UUID) -> tuple[int, str, str] | None:
    """The learner's last practice prompt of the past day still waiting for an answer: (id, item, text)."""
    row = await (await conn.execute(
        """SELECT id, item, body FROM practice_prompts WHERE learner_id = %s AND kind = 'practice'
             AND status = 'queued' AND answered_at IS NULL AND created_at > now() - interval '24 hours'
           ORDER BY created_at DESC LIMIT 1""", (learner_id,))).fetchone()
    return None if row is None else (int(str(row[0])), str(row[1] or ""), str(row[2] or ""))


async def answered(conn: Conn, prompt_id: int) -> None:
    await conn.execute("UPDATE practice_prompts SET answered_at = now() WHERE id = %s", (prompt_id,))


async def reading_answered(conn: Conn, learner_id: uuid.UUID) -> None:
    """The learner's read-aloud practice prompt of the past day (agents/readings.py), answered by a reading."""
    await conn.execute(
        """UPDATE practice_prompts SET answered_at = now() WHERE learner_id = %s AND kind = 'reading'
             AND status = 'queued' AND answered_at IS NULL AND created_at > now() - interval '24 hours'""",
        (learner_id,))


async def prompt_body(conn: Conn, learner_id: uuid.UUID, prompt_id: str) -> str | None:
    """The exercise of one of this learner's prompts (asked for by tapping its template's button), while it
    is open: sent, unanswered, of the past day (as open_prompt); None otherwise."""
    if not prompt_id.isdigit() or len(prompt_id) > 18:
        return None
    row = await (await conn.execute(
        """SELECT body FROM practice_prompts WHERE id = %s AND learner_id = %s AND kind = 'practice'
             AND status = 'queued' AND answered_at IS NULL AND created_at > now() - interval '24 hours'""",
        (int(prompt_id), learner_id))).fetchone()
    return None if row is None or row[0] is None else str(row[0])
