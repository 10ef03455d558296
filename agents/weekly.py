"""The weekly report at a practice slot (charla.progress.report) and the streak lines a prompt carries.

A free-form prompt (inside the 24-hour window) says the learner's streak news and what is left of today's goal;
the first slot of a learner's week also brings the report: its text as the caption of the chart image, drawn
after the batch commits. A prompt sent as the template says nothing more: the news waits in the profile and the
report is marked pending, to ride on the learner's next reply. Learners without a goal, silent for a week, in
their first week or reported this week already cost no query here (the batch read their profiles)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from agents.due import Due
from charla.core.events import OutboundMessage
from charla.core.runtime import Resources
from charla.progress import deliver
from charla.progress import report as reports
from charla.store.messages import Conn

log = logging.getLogger(__name__)
_QUIET = timedelta(days=7)  # no message for this long: no report (it would be all zeros)
_FIRST_WEEK = timedelta(days=7)


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
