"""The scheduler agent: practice prompts at each learner's own time, each slot sent exactly once.

Every tick (CHARLA_SCHEDULER_TICK_S) it claims due schedules with `FOR UPDATE SKIP LOCKED`, turns each
into a prompt row unique per (learner, kind, slot) and moves the schedule to its next local occurrence,
in one transaction: replicas and restarts can neither skip nor repeat a slot. Due prompt rows are then
composed (FSRS picks the item, weakest first) and handed to the outbox: free-form inside the 24-hour
window, the approved practice template (with a quick-reply button) outside it; inside it, every Nth prompt of a
learner who speaks is a read-aloud challenge with its voice note (agents/readings.py). Learners who stop
answering are written to less often, and told so. About 23 hours after a learner's last message, one short
summary of what the session taught goes out before the window closes. A free-form prompt carries the
learner's streak news; the first slot of a week inside the window also brings the weekly report and its
chart (agents/weekly.py: outside the window it waits for the learner's next message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from agents import due as batch_read
from agents import readings, weekly
from agents.due import Due, identity, opt_str
from charla.channels.registry import local_console, traits
from charla.core import alerts, window
from charla.core import constants as c
from charla.core.bus import listen
from charla.core.catalog import say
from charla.core.events import Choice, Flashcard, OutboundMessage, SpeakRequest, Template
from charla.core.runtime import Resources
from charla.core.settings import Settings
from charla.ops import broadcast_dispatch
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.tutor import practice, review
from charla.tutor.activity import Step
from charla.tutor.prompt import category_name, language_name

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MISSED_AFTER = timedelta(hours=1)  # a slot found later than this (scheduler down) is skipped, not sent late
SUMMARY_AFTER = timedelta(hours=23)  # the session summary is queued this long after the last message, window open
_NS = uuid.UUID("2b7e1f0c-5a8d-4c36-9b1e-7d4f3a2c9e55")
_SUMMARIES = sql.SQL("""
    INSERT INTO practice_prompts (learner_id, kind, slot_at, status)
    SELECT l.id, 'summary', l.last_inbound_at, 'due' FROM learners l
    WHERE {window_open} AND l.last_inbound_at <= %(now)s - %(after)s AND l.opted_out_at IS NULL
      AND EXISTS (SELECT 1 FROM turns t WHERE t.learner_id = l.id AND t.created_at >= l.last_inbound_at
                  - interval '1 day' AND (t.corrections <> '[]' OR t.vocabulary <> '[]'))
    ON CONFLICT DO NOTHING""").format(
    window_open=window.open_sql(sql.SQL("l.last_inbound_at"), sql.Placeholder("now")))


def setup(res: Resources) -> None:
    """The scheduler consumes no stream: it runs its loops beside the agent's heartbeat (practice prompts, and
    operator broadcasts paced at CHARLA_BROADCAST_RATE)."""
    res.background.append(PracticeScheduler(res).run)
    res.background.append(broadcast_dispatch.Pacer(res).run)


@dataclass
class Composed:
    """A prompt ready to queue: its text, how it goes (text or template) and what it carries."""

    due: Due
    text: str
    how: str
    item: str | None = None
    template: Template | None = None
    card: Flashcard | None = None
    choices: list[Choice] = field(default_factory=list)
    reading: Step | None = None  # a read-aloud challenge: its voice note and the activity it opens


@dataclass
class Batch:
    """What one dispatch pass writes at the end, in one transaction: skipped and queued prompts."""

    skipped: list[tuple[str, int]] = field(default_factory=list)
    queued: list[Composed] = field(default_factory=list)
    reports: list[tuple[Composed, str]] = field(default_factory=list)  # weekly reports after their prompts


@dataclass
class PracticeScheduler:
    res: Resources
    clock: Clock = field(default=lambda: datetime.now(UTC))
    passes: int = 4
    batch: int = 500

    async def run(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        console = local_console(self.res.settings)
        clock = asyncio.create_task(listen(self.res.redis, c.CONSOLE_CLOCK_KEY, stop, lambda _: wake.set())) \
            if console else None
        while not stop.is_set():
            wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, wake), self.res.settings.scheduler_tick_s)
        if clock is not None:
            await clock

    async def now(self) -> datetime:
        """The clock, moved forward by the console's offset when running with the console provider."""
        now = self.clock()
        if local_console(self.res.settings):
            now += timedelta(seconds=float(await self.res.redis.get(c.CONSOLE_CLOCK_KEY) or 0))
        return now

    async def tick(self) -> int:
        """One pass: claim due slots, queue window-closing summaries, send due prompts. Returns how many
        prompts were handed to the outbox."""
        now = await self.now()
        while await self.claim(now) >= 1000:
            pass
        await self.summaries(now)
        # Several passes at once (SKIP LOCKED keeps them apart): each batch waits on its PostgreSQL round trips.
        done = await asyncio.gather(*(self.dispatch(now, self.batch, unpublished=n == 0) for n in range(self.passes)))
        return sum(done)

    async def claim(self, now: datetime, limit: int = 1000) -> int:
        """Turn due schedules into prompt rows and move them to their next local occurrence (one transaction)."""
        async with self.res.pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(
                """SELECT id, learner_id, next_run_at, local_time, days, timezone FROM schedules
                   WHERE NOT paused AND next_run_at <= %s ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED""",
                (now, limit))).fetchall()
            prompts, moves = [], []
            for row in rows:
                slot: datetime = row[2]
                missed = now - slot > MISSED_AFTER
                prompts.append((row[1], row[0], slot, "skipped" if missed else "due",
                                "missed while stopped" if missed else None))
                moves.append((practice.next_occurrence(str(row[3]), list(row[4]), str(row[5]),
                                                       max(slot, now)), row[0]))
            async with conn.cursor() as cur:
                await cur.executemany(
                    """INSERT INTO practice_prompts (learner_id, schedule_id, kind, slot_at, status, reason)
                       VALUES (%s, %s, 'practice', %s, %s, %s) ON CONFLICT DO NOTHING""", prompts)
                await cur.executemany("UPDATE schedules SET next_run_at = %s WHERE id = %s", moves)
        return len(rows)

    async def summaries(self, now: datetime) -> None:
        """Queue one summary per learner whose window closes within the hour, if the session taught something."""
        async with self.res.pool.connection() as conn:
            await conn.execute(_SUMMARIES, {"now": now, "after": SUMMARY_AFTER})

    async def dispatch(self, now: datetime, limit: int = 500, *, unpublished: bool = True) -> int:
        """Compose a batch of due prompts (one query reads their learners, profiles and cards; one
        transaction writes them) and hand them to the outbox in pipelined round trips."""
        async with self.res.pool.connection() as conn, conn.transaction():
            dues = await batch_read.read(conn, limit, now, max(1, self.res.settings.practice_reading_every))
            batch = await self._compose_all(conn, dues, now)
            await _write(conn, batch)
        queued = [_outbound(q.due, q.due.provider, q.due.via, _outbound_id(q.due), q.text, q.how, q.template, q.card,
                            q.choices) for q in batch.queued]
        for q, text in batch.reports:  # charts are drawn after commit, off the event loop
            report = _outbound(q.due, q.due.provider, q.due.via, _report_id(q.due), text, "image", None)
            report = report.model_copy(update={"kind": "image"})
            drawn = await weekly.with_chart(self.res, report, q.due.learner_id, now)
            queued += [drawn] if drawn is not None else []
        spoken = [r for q in batch.queued if q.reading and (r := readings.request(q.due, q.reading)) is not None]
        if unpublished:
            queued += await self._unpublished(now) + await weekly.undrawn(self.res, now)
            async with self.res.pool.connection() as conn:
                spoken += await readings.unspoken(conn, now)
        await asyncio.gather(*(self.res.bus.publish(c.STREAM_OUTBOX, m, dedupe_key=f"outbox:{m.outbound_id}")
                               for m in queued))
        await weekly.handed_over(self.res, queued)
        await _speak(self.res, spoken)
        return len(queued)

    async def _compose_all(self, conn: Conn, dues: list[Due], now: datetime) -> Batch:
        batch, statuses = Batch(), _Statuses(self.res)
        for due in dues:
            found = await self._compose(conn, due, now, statuses)
            if isinstance(found, str):
                log.info("prompt %s for learner %s skipped: %s", due.prompt_id, due.learner_id, found)
                batch.skipped.append((found, due.prompt_id))
                continue
            batch.queued.append(found)
            native = due.learner.native_language or self.res.settings.default_native_language
            text = await weekly.report(conn, due, now, native, free_form=found.how != "template",
                                       outbound_id=_report_id(due))
            if text is not None:
                batch.reports.append((found, text))
            for later in dues:  # a later prompt of the same learner in this batch sees this one queued
                if later.learner_id == due.learner_id and due.kind == "practice":
                    later.unanswered, later.last_queued = later.unanswered + 1, due.slot_at
                    later.recent.insert(0, "reading" if found.reading else "practice")
        return batch

    async def _compose(self, conn: Conn, due: Due, now: datetime, statuses: _Statuses) -> Composed | str:
        """The prompt to queue, or why it is skipped."""
        window_open = window.is_open(due.last_inbound_at, now)
        settings = self.res.settings
        native = due.learner.native_language or settings.default_native_language
        if due.kind == "summary":
            text = await _summary(conn, due.learner_id, due.slot_at, native) if window_open else None
            if text is None:
                return "window closed" if not window_open else "nothing to summarize"
            return Composed(due, text, "text")
        skip = batch_read.why_not(due, now)
        if skip is not None:
            return skip
        target = due.learner.target_language or settings.default_target_language
        free_form = window_open or not traits(due.provider).window
        lines = await weekly.streak_lines(conn, due, now, native, free_form=free_form)
        if readings.due_reading(due, settings, free_form=free_form):
            text, step = readings.compose(due, lines, native, target)
            return Composed(due, text, "text", choices=step.choices, reading=step)
        item = practice.pick_item(due.learner, due.cards, now)
        text = practice.exercise(item, due.learner, native, backed_off=due.unanswered >= 2, target=target)
        if free_form:
            return _inside(due, item, "\n\n".join([*lines, text]), now, native, settings)
        if not settings.practice_template:
            return "window closed and no CHARLA_PRACTICE_TEMPLATE"
        language = settings.practice_template_language or settings.template_language
        status = await statuses.of(settings.practice_template, language)
        if status not in (None, "APPROVED", "UNARCHIVED"):
            return f"CHARLA_PRACTICE_TEMPLATE {settings.practice_template} is {status} at WhatsApp"
        template = Template(name=settings.practice_template, language=language,
                            body_params=[due.name or "", _label(item, target, language)],
                            button_payload=f"practice:{due.prompt_id}")
        return Composed(due, text, "template", item, template)

    async def _unpublished(self, now: datetime) -> list[OutboundMessage]:
        """Prompts queued by a pass that died before publishing (the outbox dedupes the rest)."""
        async with self.res.pool.connection() as conn:
            rows = await (await conn.execute(
                """SELECT p.id, p.learner_id, p.kind, p.slot_at, p.body, p.via, p.outbound_id, l.wa_id, l.wa_user_id,
                          l.twilio_id, l.console_id, l.display_name, m.payload, ch.provider, ch.via
                   FROM practice_prompts p JOIN messages m ON m.outbound_id = p.outbound_id
                   JOIN learners l ON l.id = p.learner_id
                   LEFT JOIN LATERAL (SELECT i.provider, i.payload->>'to' AS via FROM messages i
                                      WHERE i.learner_id = p.learner_id AND i.direction = 'in'
                                      ORDER BY i.id DESC LIMIT 1) ch ON true
                   WHERE p.status = 'queued' AND m.status = 'queued' AND p.created_at < %s - interval '30 seconds'
                     AND p.created_at > %s - interval '1 hour' AND p.kind <> 'review'""", (now, now))).fetchall()
        found = []
        for r in rows:
            due = Due(int(str(r[0])), uuid.UUID(str(r[1])), str(r[2]), r[3], str(r[4]),
                      identity(r[7:11], r[11]), None, opt_str(r[11]))
            offered = [Choice.model_validate(x) for x in (r[12] or {}).get("choices", [])]
            found.append(_outbound(due, opt_str(r[13]) or "meta", opt_str(r[14]), uuid.UUID(str(r[6])), str(r[4]),
                                   str(r[5]), None, None, offered))
        return found


class _Statuses:
    """The practice template's review status at WhatsApp, read once per batch."""

    def __init__(self, res: Resources) -> None:
        self.res, self.known = res, dict[tuple[str, str], str | None]()

    async def of(self, name: str, language: str) -> str | None:
        if (name, language) not in self.known:
            self.known[name, language] = await alerts.template_status(self.res.redis, name, language)
        return self.known[name, language]


def _inside(due: Due, item: str | None, text: str, now: datetime, native: str, settings: Settings) -> Composed:
    """A prompt inside the window: "N due today", and grade buttons when the item is a card under review
    (its flashcard image then stays off: the buttons carry the review)."""
    zone_name = due.learner.timezone
    count = review.due_today(due.cards, now, zone_name)
    if count:
        text += "\n" + say("review.due_today", native, count=count)
    reviewing = item is not None and any(card.item == item for card in due.cards) and \
        review.reviewed_today(due.answered, now, zone_name) < settings.review_daily_cap
    if reviewing:
        choices = review.grade_choices(due.prompt_id, native, easy=settings.review_easy)
        return Composed(due, text, "text", item, choices=choices)
    return Composed(due, text, "text", item, card=_card(item, due.learner))


def _outbound_id(due: Due) -> uuid.UUID:
    return uuid.uuid5(_NS, f"prompt:{due.prompt_id}")


def _report_id(due: Due) -> uuid.UUID:
    return uuid.uuid5(_NS, f"report:{due.prompt_id}")


async def _write(conn: Conn, batch: Batch) -> None:
    """The batch's prompts as skipped or queued, and each queued one's outbound message (pipelined)."""
    async with conn.cursor() as cur:
        await cur.executemany("UPDATE practice_prompts SET status = 'skipped', reason = %s WHERE id = %s",
                              batch.skipped)
        await cur.executemany(
            """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
               VALUES (%s, 'out', %s, %s, %s, %s, %s, 'queued') ON CONFLICT DO NOTHING""",
            [(q.due.learner_id, q.due.provider, _outbound_id(q.due), "choices" if q.choices else q.how, q.text,
              Jsonb({"practice": True, **({"choices": [x.model_dump() for x in q.choices]} if q.choices else {})}))
             for q in batch.queued])
        await cur.executemany(
            """UPDATE practice_prompts SET status = 'queued', kind = %s, via = %s, item = %s, body = %s,
                      outbound_id = %s WHERE id = %s""",
            [("reading" if q.reading else q.due.kind, q.how, q.item, q.text, _outbound_id(q.due), q.due.prompt_id)
             for q in batch.queued])
    await readings.write(conn, [(q.due, q.reading) for q in batch.queued if q.reading])


async def _speak(res: Resources, requests: list[SpeakRequest]) -> None:
    """Ask the voice agent for the reading prompts' voice notes (after their texts; deduplicated per note)."""
    await asyncio.gather(*(res.bus.publish(c.STREAM_VOICE, r, dedupe_key=f"speak:{r.outbound_id}")
                           for r in requests))


async def _first(*events: asyncio.Event) -> None:
    """Return when any of `events` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def _outbound(due: Due, provider: str, via: str | None, outbound_id: uuid.UUID, text: str, how: str,
              template: Template | None, card: Flashcard | None = None, choices: list[Choice] | None = None
              ) -> OutboundMessage:
    kind = "template" if how == "template" else "choices" if choices else "text"
    return OutboundMessage(id=f"out-{outbound_id}", learner=due.identity.key(), outbound_id=str(outbound_id),
                           provider=provider, to=due.identity, text=text, via=via, kind=kind, template=template,
                           flashcard=card, choices=choices or [])


def _card(item: str | None, learner: Profile) -> Flashcard | None:
    """A vocabulary item is reviewed on a flashcard image (Meta); error categories stay text."""
    if not item or not item.startswith("word:"):
        return None
    word = item.removeprefix("word:")
    entry = learner.vocabulary.get(word)
    return Flashcard(word=word, translation=entry.translation if entry else "")


def _label(item: str | None, target: str, language: str) -> str:
    """What the practice template names (in the template's own `language`): the category, the word, or the
    language practised."""
    if item and item.startswith("error:"):
        return category_name(item.removeprefix("error:"), language)
    return item.removeprefix("word:") if item else language_name(target, language)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


async def _summary(conn: Conn, learner_id: uuid.UUID, since: datetime, native: str) -> str | None:
    """The session's key points: its corrections and new words (None when it taught nothing)."""
    rows = await (await conn.execute(
        """SELECT corrections, vocabulary FROM turns WHERE learner_id = %s AND created_at >= %s - interval '1 day'
           ORDER BY id""", (learner_id, since))).fetchall()
    fixes = [f"~{c.get('original')}~ → *{c.get('corrected')}*" for r in rows for c in _dicts(r[0])][-3:]
    words = list(dict.fromkeys(str(w.get("word")) for r in rows for w in _dicts(r[1])))[-5:]
    if not fixes and not words:
        return None
    lines = [say("summary.title", native)] + [f"✏️ {f}" for f in fixes]
    if words:
        lines.append("📚 " + " · ".join(f"*{w}*" for w in words))
    return "\n".join(lines)

