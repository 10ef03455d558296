"""Read-aloud practice prompts (issue 23): on some practice slots the day's practice is a read-aloud challenge,
the sentence as text and as a voice note, with the `speak` activity opened on it (agents/speaking.py), so the
learner's next voice note is scored exactly as after "practice speaking".

Which slots: every CHARLA_PRACTICE_READING_EVERY-th prompt a learner is sent (default 3: two ordinary prompts,
then a reading; 0 never), for a learner who has voice notes on (CHARLA_VOICE_REPLIES and their own setting) and
sent at least one voice note in the last 30 days: someone who never speaks is not asked to. A reading needs a
free-form message (a template carries no voice note): outside the 24-hour window the slot is an ordinary
template prompt and the reading waits for the next slot inside it. Nor does a reading interrupt another guided
activity the learner touched in the last day (a roleplay, a level test): that slot is an ordinary prompt too.

Everything is decided from the batch's one query (agents/due.py) and written in the dispatch's transaction:
the prompt row (kind 'reading'), the voice note's message row and the open activity commit together; the voice
note is requested after commit, and requested again by a later pass if it was never spoken.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg.types.json import Jsonb

from agents import speaking
from agents.due import Due, identity, opt_str
from charla.core.catalog import say
from charla.core.events import SpeakRequest
from charla.core.settings import Settings
from charla.store import activities
from charla.store.messages import Conn
from charla.tutor.activity import Step

_NS = uuid.UUID("6f0e4c2a-93b1-4d57-8a2e-1c5b7d9e3f48")
_UNSPOKEN = """
    SELECT v.outbound_id, v.body, v.provider, v.payload->>'language', l.wa_id, l.wa_user_id, l.twilio_id,
           l.console_id, l.display_name, ch.via
    FROM messages v JOIN learners l ON l.id = v.learner_id
    LEFT JOIN LATERAL (SELECT i.payload->>'to' AS via FROM messages i WHERE i.learner_id = v.learner_id
                       AND i.direction = 'in' ORDER BY i.id DESC LIMIT 1) ch ON true
    WHERE v.direction = 'out' AND v.kind = 'voice' AND v.status = 'queued' AND v.payload ? 'reading'
      AND v.created_at < %(now)s - interval '30 seconds' AND v.created_at > %(now)s - interval '1 hour'"""


def due_reading(due: Due, settings: Settings, *, free_form: bool) -> bool:
    """Whether this practice slot goes out as a read-aloud challenge (the rule in the module's docstring)."""
    every = settings.practice_reading_every
    if every == 0 or due.kind != "practice" or not free_form or due.busy:
        return False
    if not (settings.voice_replies and due.learner.preferences.voice and due.voiced):
        return False
    last = due.recent[:every - 1]
    return len(last) == every - 1 and "reading" not in last


def compose(due: Due, lines: list[str], native: str, target: str) -> tuple[str, Step]:
    """The prompt's text (streak news, the practice heading, the challenge) and the challenge's step."""
    step = speaking.challenge(due.learner, native, target)
    backed_off = [say("practice.backed_off", native)] if due.unanswered >= 2 else []
    return "\n\n".join([*lines, "\n".join([say("practice.title", native), *backed_off, step.text])]), step


def voice_id(due: Due) -> uuid.UUID:
    """The outbound id of a reading prompt's voice note."""
    return uuid.uuid5(_NS, f"reading:{due.prompt_id}")


async def write(conn: Conn, readings: list[tuple[Due, Step]]) -> None:
    """Each reading's voice note (a queued message) and its open `speak` activity, in the caller's transaction."""
    if not readings:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, payload, status)
               VALUES (%s, 'out', %s, %s, 'voice', %s, %s, 'queued') ON CONFLICT DO NOTHING""",
            [(due.learner_id, due.provider, voice_id(due), step.say[0],
              Jsonb({"practice": True, "reading": due.prompt_id, "language": step.say[1]}))
             for due, step in readings if step.say is not None])
    await activities.begin_all(conn, [(due.learner_id, speaking.Speak.kind, step.state or {})
                                      for due, step in readings])


def request(due: Due, step: Step) -> SpeakRequest | None:
    """Ask the voice agent to speak the reading's sentence (after commit)."""
    if step.say is None:
        return None
    outbound_id = str(voice_id(due))
    return SpeakRequest(id=f"speak-{outbound_id}", learner=due.identity.key(), outbound_id=outbound_id,
                        provider=due.provider, to=due.identity, via=due.via, text=step.say[0],
                        language=step.say[1])


async def unspoken(conn: Conn, now: datetime) -> list[SpeakRequest]:
    """Reading voice notes recorded by a pass that died before asking for them (the bus dedupes the rest)."""
    rows = await (await conn.execute(_UNSPOKEN, {"now": now})).fetchall()
    found = []
    for r in rows:
        who = identity(r[4:8], r[8])
        found.append(SpeakRequest(id=f"speak-{r[0]}", learner=who.key(), outbound_id=str(r[0]), provider=str(r[2]),
                                  to=who, via=opt_str(r[9]), text=str(r[1]), language=str(r[3])))
    return found
