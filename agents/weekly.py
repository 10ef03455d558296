"""The weekly report at a practice slot (charla.progress.report) and the streak lines a prompt carries.

A free-form prompt (inside the 24-hour window) says the learner's streak news and what is left of today's goal;
the first slot of a learner's week also brings the report: its text as the caption of the chart image, drawn
after the batch commits (by a later pass when this one died first: `undrawn`). A prompt sent as the template
says nothing more: the news waits in the profile and the report is marked pending, to ride on the learner's
next reply. Learners without a goal, silent for a week, in
their first week or reported this week already cost no query here (the batch read their profiles)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from agents.due import Due, identity, opt_str
from charla.core.events import OutboundMessage
from charla.core.runtime import Resources
from charla.progress import deliver
from charla.progress import report as reports
from charla.store import messages
from charla.store.messages import Conn

log = logging.getLogger(__name__)
_QUIET = timedelta(days=7)  # no message for this long: no report (it would be all zeros)
_FIRST_WEEK = timedelta(days=7)
_UNDRAWN = """
    SELECT m.outbound_id, m.learner_id, m.body, m.provider, l.wa_id, l.wa_user_id, l.twilio_id, l.console_id,
           l.display_name, ch.via
    FROM messages m JOIN learners l ON l.id = m.learner_id
    LEFT JOIN LATERAL (SELECT i.payload->>'to' AS via FROM messages i WHERE i.learner_id = m.learner_id
                       AND i.direction = 'in' ORDER BY i.id DESC LIMIT 1) ch ON true
    WHERE m.direction = 'out' AND m.kind = 'image' AND m.status = 'queued' AND m.payload = '{"report": true}'
      AND m.created_at < %(now)s - interval '30 seconds' AND m.created_at > %(now)s - interval '1 hour'"""


async def streak_lines(conn: Conn, due: Due, now: datetime, native: str, *, free_form: bool) -> list[str]:
    """Settle the learner's streak before their prompt; the lines a free-form prompt starts with."""
    if due.learner.goal is None and not due.learner.streak.news:
        return []
    return await deliver.prompt_lines(conn, due.learner_id, now, native, free_form=free_form)


async def report(conn: Conn, due: Due, now: datetime, native: str, *, free_form: bool, outbound_id: uuid.UUID
                 ) -> str | None:
    """This week's report text, recorded as an image message to send after `due`'s prompt (None: none now)."""
    if due.kind != "practice" or due.last_inbound_at is None or now - due.last_inbound_at > _QUIET:
        return None
    if not reports.due(due.learner, now) or (due.joined is not None and now - due.joined < _FIRST_WEEK):
        return None  # sent this week already, paused, or the learner's first week (`my progress` answers any time)
    text = await deliver.scheduled_report(conn, due.learner_id, now, native, free_form=free_form)
    if text is None:
        return None
    await conn.execute(
        """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
           VALUES (%s, 'out', %s, %s, 'image', %s, '{"report": true}', 'queued') ON CONFLICT DO NOTHING""",
        (due.learner_id, due.provider, outbound_id, text))
    return text


async def with_chart(res: Resources, message: OutboundMessage, learner_id: uuid.UUID, now: datetime
                     ) -> OutboundMessage | None:
    """The report message with its chart drawn and kept for the sender; None when the chart cannot be drawn
    (logged: the batch's prompts still go out, this week's report does not)."""
    try:
        token = await deliver.keep_chart(res.pool, res.redis, learner_id, now, res.settings.default_native_language,
                                         res.settings.export_ttl_s)
    except Exception:  # matplotlib, a profile it cannot plot, Redis: one learner's chart stops no one's prompt
        log.exception("learner %s: the weekly report's chart could not be drawn; the report is not sent", learner_id)
        return None
    return message.model_copy(update={"image": token})


async def undrawn(res: Resources, now: datetime) -> list[OutboundMessage]:
    """Reports recorded by a pass that died (or failed to draw the chart) before handing them to the outbox
    (`handed_over` marks the rest): drawn now, to be published (the outbox dedupes). A chart that fails a
    second time is given up: the message is marked failed, this week's report is not sent."""
    async with res.pool.connection() as conn:
        rows = await (await conn.execute(_UNDRAWN, {"now": now})).fetchall()
    found = []
    for r in rows:
        who = identity(r[4:8], r[8])
        message = OutboundMessage(id=f"out-{r[0]}", learner=who.key(), outbound_id=str(r[0]), provider=str(r[3]),
                                  to=who, text=str(r[2]), via=opt_str(r[9]), kind="image")
        if (drawn := await with_chart(res, message, uuid.UUID(str(r[1])), now)) is not None:
            found.append(drawn)
            continue
        async with res.pool.connection() as conn:
            await messages.mark_failed(conn, uuid.UUID(str(r[0])), {"reason": "the weekly chart could not be drawn"})
    return found


async def handed_over(res: Resources, sent: list[OutboundMessage]) -> None:
    """Mark the reports among `sent` (published to the outbox) so that no later pass draws them again."""
    ids = [uuid.UUID(m.outbound_id) for m in sent if m.kind == "image"]
    if ids:
        async with res.pool.connection() as conn:
            await conn.execute("""UPDATE messages SET payload = payload || '{"published": true}'
                                  WHERE outbound_id = ANY(%s) AND payload = '{"report": true}'""", (ids,))
