"""The scheduler agent: practice prompts at each learner's own time, each slot sent exactly once.

Every tick (CHARLA_SCHEDULER_TICK_S) it claims due schedules with `FOR UPDATE SKIP LOCKED`, turns each
into a prompt row unique per (learner, kind, slot) and moves the schedule to its next local occurrence,
in one transaction: replicas and restarts can neither skip nor repeat a slot. Due prompt rows are then
composed (FSRS picks the item, weakest first) and handed to the outbox: free-form inside the 24-hour
window, the approved practice template (with a quick-reply button) outside it. Learners who stop
answering are written to less often, and told so. About 23 hours after a learner's last message, one short
summary of what the session taught goes out before the window closes. A free-form prompt carries the
learner's streak news; the first slot of a week inside the window also brings the weekly report and its
chart (charla.progress.report: outside the window it waits for the learner's next message).
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

from charla.channels.registry import local_console, traits
from charla.core import alerts, window
from charla.core import constants as c
from charla.core.bus import listen
from charla.core.catalog import say
from charla.core.events import Flashcard, Identity, OutboundMessage, Template
from charla.core.runtime import Resources
from charla.ops import broadcast_dispatch
from charla.progress import deliver
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.tutor import practice
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
class Due:
    prompt_id: int
    learner_id: uuid.UUID
    kind: str
    slot_at: datetime
    body: str | None
    identity: Identity
    last_inbound_at: datetime | None
    name: str | None


@dataclass
class PracticeScheduler:
    res: Resources
    clock: Clock = field(default=lambda: datetime.now(UTC))
    passes: int = 4

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
        await self.claim(now)
        await self.summaries(now)
        # Several passes at once (SKIP LOCKED keeps them apart): composing waits on PostgreSQL round trips.
        done = await asyncio.gather(*(self.dispatch(now, unpublished=n == 0) for n in range(self.passes)))
        return sum(done)

    async def claim(self, now: datetime, limit: int = 1000) -> int:
        async with self.res.pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(
                """SELECT id, learner_id, next_run_at, local_time, days, timezone FROM schedules
                   WHERE NOT paused AND next_run_at <= %s ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED""",
                (now, limit))).fetchall()
            for row in rows:
                slot: datetime = row[2]
                missed = now - slot > MISSED_AFTER
                await conn.execute(
                    """INSERT INTO practice_prompts (learner_id, schedule_id, kind, slot_at, status, reason)
                       VALUES (%s, %s, 'practice', %s, %s, %s) ON CONFLICT DO NOTHING""",
                    (row[1], row[0], slot, "skipped" if missed else "due", "missed while stopped" if missed else None))
                following = practice.next_occurrence(str(row[3]), list(row[4]), str(row[5]), max(slot, now))
                await conn.execute("UPDATE schedules SET next_run_at = %s WHERE id = %s", (following, row[0]))
        return len(rows)

    async def summaries(self, now: datetime) -> None:
        """Queue one summary per learner whose window closes within the hour, if the session taught something."""
        async with self.res.pool.connection() as conn:
            await conn.execute(_SUMMARIES, {"now": now, "after": SUMMARY_AFTER})

    async def dispatch(self, now: datetime, limit: int = 200, *, unpublished: bool = True) -> int:
        queued: list[OutboundMessage] = []
        charts: list[tuple[int, uuid.UUID]] = []  # (index in queued, learner) of reports to draw after commit
        async with self.res.pool.connection() as conn, conn.transaction():
            for due in await _due(conn, limit):
                message = await self._compose(conn, due, now)
                if message is not None:
                    queued.append(message)
                    report = await self._report(conn, due, message, now)
                    if report is not None:
                        charts.append((len(queued), due.learner_id))
                        queued.append(report)
        for index, learner_id in charts:
            token = await deliver.keep_chart(self.res.pool, self.res.redis, learner_id, now,
                                             self.res.settings.default_native_language, self.res.settings.export_ttl_s)
            queued[index] = queued[index].model_copy(update={"image": token})
        if unpublished:
            queued += await self._unpublished(now)
        for message in queued:
            await self.res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{message.outbound_id}")
        return len(queued)

    async def _compose(self, conn: Conn, due: Due, now: datetime) -> OutboundMessage | None:
        window_open = window.is_open(due.last_inbound_at, now)
        provider, via = await _channel(conn, due.learner_id)
        settings = self.res.settings
        learner = await profile.load(conn, due.learner_id)
        native = learner.native_language or settings.default_native_language
        if due.kind == "summary":
            text = await _summary(conn, due.learner_id, due.slot_at, native) if window_open else None
            if text is None:
                await _skip(conn, due, "window closed" if not window_open else "nothing to summarize")
                return None
            return await self._queue(conn, due, provider, via, text, "text", None, None)
        skip = await _why_not(conn, due, now)
        if skip is not None:
            await _skip(conn, due, skip)
            return None
        item = practice.pick_item(learner, await practice.cards(conn, due.learner_id), now)
        unanswered = await _unanswered(conn, due.learner_id, due.last_inbound_at)
        text = practice.exercise(item, learner, native, backed_off=unanswered >= 2)
        if window_open or not traits(provider).window:
            lines = await deliver.prompt_lines(conn, due.learner_id, now, native, free_form=True)
            text = "\n\n".join([*lines, text])
            return await self._queue(conn, due, provider, via, text, "text", item, None, _card(item, learner))
        if not settings.practice_template:
            await _skip(conn, due, "window closed and no CHARLA_PRACTICE_TEMPLATE")
            return None
        language = settings.practice_template_language or settings.template_language
        status = await alerts.template_status(self.res.redis, settings.practice_template, language)
        if status not in (None, "APPROVED", "UNARCHIVED"):
            await _skip(conn, due, f"CHARLA_PRACTICE_TEMPLATE {settings.practice_template} is {status} at WhatsApp")
            return None
        target = learner.target_language or settings.default_target_language
        await deliver.prompt_lines(conn, due.learner_id, now, native, free_form=False)
        template = Template(name=settings.practice_template, language=language,
                            body_params=[due.name or "", _label(item, target, language)],
                            button_payload=f"practice:{due.prompt_id}")
        return await self._queue(conn, due, provider, via, text, "template", item, template)

    async def _queue(self, conn: Conn, due: Due, provider: str, via: str | None, text: str, how: str,
                     item: str | None, template: Template | None, card: Flashcard | None = None) -> OutboundMessage:
        outbound_id = uuid.uuid5(_NS, f"prompt:{due.prompt_id}")
        await conn.execute(
            """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
               VALUES (%s, 'out', %s, %s, %s, %s, '{"practice": true}', 'queued') ON CONFLICT DO NOTHING""",
            (due.learner_id, provider, outbound_id, how, text))
        await conn.execute(
            """UPDATE practice_prompts SET status = 'queued', via = %s, item = %s, body = %s, outbound_id = %s
               WHERE id = %s""",
            (how, item, text, outbound_id, due.prompt_id))
        return _outbound(due, provider, via, outbound_id, text, how, template, card)

    async def _report(self, conn: Conn, due: Due, prompt: OutboundMessage, now: datetime) -> OutboundMessage | None:
        """This week's report after a practice prompt sent free-form (its chart is drawn after commit); with a
        template, the report is left pending for the learner's next reply."""
        if due.kind != "practice":
            return None
        text = await deliver.scheduled_report(conn, due.learner_id, now, self.res.settings.default_native_language,
                                              free_form=prompt.kind != "template")
        if text is None:
            return None
        outbound_id = uuid.uuid5(_NS, f"report:{due.prompt_id}")
        await conn.execute(
            """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
               VALUES (%s, 'out', %s, %s, 'image', %s, '{"report": true}', 'queued') ON CONFLICT DO NOTHING""",
            (due.learner_id, prompt.provider, outbound_id, text))
        return prompt.model_copy(update={"id": f"out-{outbound_id}", "outbound_id": str(outbound_id), "text": text,
                                         "kind": "image", "flashcard": None, "template": None})

    async def _unpublished(self, now: datetime) -> list[OutboundMessage]:
        """Prompts queued by a pass that died before publishing (the outbox dedupes the rest)."""
        async with self.res.pool.connection() as conn:
            rows = await (await conn.execute(
                """SELECT p.id, p.learner_id, p.kind, p.slot_at, p.body, p.via, p.outbound_id, l.wa_id, l.wa_user_id,
                          l.twilio_id, l.console_id, l.display_name
                   FROM practice_prompts p JOIN messages m ON m.outbound_id = p.outbound_id
                   JOIN learners l ON l.id = p.learner_id
                   WHERE p.status = 'queued' AND m.status = 'queued' AND p.created_at < %s - interval '30 seconds'
                     AND p.created_at > %s - interval '1 hour'""", (now, now))).fetchall()
            found = []
            for r in rows:
                due = Due(int(str(r[0])), uuid.UUID(str(r[1])), str(r[2]), r[3], str(r[4]),
                          _identity(r[7:11], r[11]),
                          None, _str(r[11]))
                provider, via = await _channel(conn, due.learner_id)
                found.append(_outbound(due, provider, via, uuid.UUID(str(r[6])), str(r[4]), str(r[5]), None))
        return found


async def _first(*events: asyncio.Event) -> None:
    """Return when any of `events` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def _outbound(due: Due, provider: str, via: str | None, outbound_id: uuid.UUID, text: str, how: str,
              template: Template | None, card: Flashcard | None = None) -> OutboundMessage:
    return OutboundMessage(id=f"out-{outbound_id}", learner=due.identity.key(), outbound_id=str(outbound_id),
                           provider=provider, to=due.identity, text=text, via=via,
                           kind="template" if how == "template" else "text", template=template, flashcard=card)


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


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _identity(ids: Any, name: Any) -> Identity:
    wa_id, user_id, twilio, console = ids
    return Identity(wa_id=_str(wa_id), user_id=_str(user_id), twilio=_str(twilio), console=_str(console),
                    name=_str(name))


async def _due(conn: Conn, limit: int) -> list[Due]:
    rows = await (await conn.execute(
        """SELECT p.id, p.learner_id, p.kind, p.slot_at, p.body, l.wa_id, l.wa_user_id, l.twilio_id, l.console_id,
                  l.display_name, l.last_inbound_at
           FROM practice_prompts p JOIN learners l ON l.id = p.learner_id
           WHERE p.status = 'due' ORDER BY p.slot_at LIMIT %s FOR UPDATE OF p SKIP LOCKED""", (limit,))).fetchall()
    return [Due(int(str(r[0])), uuid.UUID(str(r[1])), str(r[2]), r[3], _str(r[4]), _identity(r[5:9], r[9]),  # type: ignore[arg-type]
                r[10], _str(r[9])) for r in rows]  # type: ignore[arg-type]


async def _channel(conn: Conn, learner_id: uuid.UUID) -> tuple[str, str | None]:
    """The provider the learner last wrote through, and our number they wrote to."""
    row = await (await conn.execute(
        """SELECT provider, payload->>'to' FROM messages WHERE learner_id = %s AND direction = 'in'
           ORDER BY id DESC LIMIT 1""", (learner_id,))).fetchone()
    return (str(row[0]), _str(row[1])) if row else ("meta", None)


async def _why_not(conn: Conn, due: Due, now: datetime) -> str | None:
    """A reason not to send this prompt: unreachable, opted out, a recent failed template, or backing off."""
    row = await (await conn.execute(
        """SELECT l.unreachable_at IS NOT NULL, l.opted_out_at IS NOT NULL,
                  EXISTS (SELECT 1 FROM messages m WHERE m.learner_id = l.id AND m.direction = 'out'
                          AND m.status = 'failed' AND m.updated_at > %s - interval '24 hours'
                          AND (m.error->>'code' = '131049' OR m.error->'errors'->0->>'code' = '131049')),
                  (SELECT max(slot_at) FROM practice_prompts p WHERE p.learner_id = l.id AND p.status = 'queued')
           FROM learners l WHERE l.id = %s""", (now, due.learner_id))).fetchone()
    if row is None or row[0]:
        return "learner unreachable"
    if row[1]:
        return "learner opted out"
    if row[2]:
        return "a template failed with 131049 in the last 24 hours"
    unanswered = await _unanswered(conn, due.learner_id, due.last_inbound_at)
    if unanswered >= 2 and row[3] is not None:
        wait = timedelta(days=min(2 ** (unanswered - 1), 14)) - timedelta(hours=1)
        if now - row[3] < wait:  # type: ignore[operator]
            return f"backing off: {unanswered} prompts unanswered"
    return None


async def _unanswered(conn: Conn, learner_id: uuid.UUID, since: datetime | None) -> int:
    row = await (await conn.execute(
        """SELECT count(*) FROM practice_prompts WHERE learner_id = %s AND kind = 'practice' AND status = 'queued'
             AND answered_at IS NULL AND (%s::timestamptz IS NULL OR slot_at > %s)""",
        (learner_id, since, since))).fetchone()
    return int(str(row[0])) if row else 0


async def _skip(conn: Conn, due: Due, reason: str) -> None:
    log.info("prompt %s for learner %s skipped: %s", due.prompt_id, due.learner_id, reason)
    await conn.execute("UPDATE practice_prompts SET status = 'skipped', reason = %s WHERE id = %s",
                       (reason, due.prompt_id))


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

