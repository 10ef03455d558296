"""The memory agent (first part): keeps each learner's error-frequency map and vocabulary from their turns.

It consumes turn events off the reply path. Counts are counted from the tutor's structured corrections,
never guessed. Each turn is applied once: the profile remembers the last turn it applied, in the same
row and transaction as the counts, so a crash mid-update neither loses nor double-counts a turn.
(Summaries, inferred facts and pgvector recall arrive with the learner-memory issue.)
"""

from __future__ import annotations

import uuid

import regex

from charla import profile
from charla.bus import Delivery
from charla.errors import PermanentError
from charla.events import TurnEvent
from charla.profile import Example, Profile
from charla.runtime import Resources
from charla.worker import Handler

_WORD = regex.compile(r"\p{L}+(?:['’]\p{L}+)?")


def build(res: Resources) -> Handler:
    async def handle(delivery: Delivery) -> None:
        event = delivery.event()
        if not isinstance(event, TurnEvent):
            raise PermanentError(f"memory agent cannot handle {event.type}")
        learner_id = uuid.UUID(event.learner_id)
        async with res.pool.connection() as conn, conn.transaction():
            exists = await (await conn.execute("SELECT 1 FROM learners WHERE id = %s FOR SHARE",
                                               (learner_id,))).fetchone()
            if exists:  # else the learner asked to be forgotten meanwhile: nothing to keep
                await profile.update(conn, learner_id, lambda p: apply(p, event))

    return handle


def apply(p: Profile, turn: TurnEvent) -> None:
    """Count `turn` into the profile, unless it was counted already."""
    if turn.turn_id <= p.applied_turn:
        return
    p.applied_turn = turn.turn_id
    source = turn.message_ids[-1] if turn.message_ids else ""
    corrected: set[str] = set()
    for fix in turn.corrections:
        original, fixed = str(fix.get("original", "")), str(fix.get("corrected", ""))
        p.count_error(str(fix.get("category") or "other"), Example(original=original, corrected=fixed,
                                                                   message_id=source), turn.at)
        corrected |= {w.lower() for w in _WORD.findall(original)}
    for word in turn.vocabulary:
        text = str(word.get("word", "")).strip().lower()
        if text and text not in p.vocabulary:
            p.add_word(text, str(word.get("translation", "")), turn.at)
    for used in {w.lower() for w in _WORD.findall(turn.text)} & set(p.vocabulary):
        p.see_word(used, "", turn.at, correct=used not in corrected)
