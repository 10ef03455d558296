"""The memory agent: what Charla remembers of each learner, built from their turns, off the reply path.

For every turn event it counts the turn's structured corrections into the profile's error-frequency map
and its vocabulary (counted, never guessed). Every CHARLA_MEMORY_EVERY learner messages it asks a model
(the hard chain: Claude first) for learner facts and a summary with key moments: facts are merged into the
profile with provenance (newer facts replace older ones), the summary and moments are embedded
(multilingual-e5-small) and stored as conversation memories. Each step records how far it got (the last
turn counted, the last turn summarized) in the same transaction as its effect, so a crash mid-update
neither loses nor double-counts anything. A model outage only postpones the summary to the next turn.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

import regex

from charla.core.bus import Delivery
from charla.core.errors import PermanentError
from charla.core.events import TurnEvent
from charla.core.runtime import Resources
from charla.core.worker import Handler
from charla.store import memories, profile, turns
from charla.store.profile import Example, Profile
from charla.store.session import Session
from charla.tutor import insights, practice
from charla.tutor.llm import LLMError
from charla.tutor.prompt import InvalidReply, parse_as, system_prompt
from charla.tutor.router import Route, Router, open_providers

log = logging.getLogger(__name__)
_WORD = regex.compile(r"\p{L}+(?:['’]\p{L}+)?")


def build(res: Resources) -> Handler:
    router = Router.from_settings(res.settings, open_providers(res.settings), res.redis)
    res.closers.append(router.close)
    agent = MemoryAgent(res, router, memories.Embedder() if not router.demo_only else None)
    return agent.handle


@dataclass
class MemoryAgent:
    res: Resources
    router: Router
    embedder: memories.Embedder | None  # None: no model can summarize (only the demo model, or none)
    _failed: dict[uuid.UUID, int] = field(default_factory=dict)  # learner -> turn of the last failed summary

    async def handle(self, delivery: Delivery) -> None:
        event = delivery.event()
        if not isinstance(event, TurnEvent):
            raise PermanentError(f"memory agent cannot handle {event.type}")
        learner_id = uuid.UUID(event.learner_id)
        async with self.res.pool.connection() as conn, conn.transaction():
            if not await _exists(conn, learner_id):  # forgotten meanwhile: nothing to keep
                return
            stored = await profile.update(conn, learner_id, lambda p: apply(p, event))
            due = await turns.messages_since(conn, learner_id, stored.summarized_turn, event.turn_id)
        after_failure = await self._since_failure(learner_id, event.turn_id)
        if self.embedder is not None and min(due, after_failure) >= self.res.settings.memory_every:
            await self.summarize(learner_id, stored, event.turn_id)

    async def _since_failure(self, learner_id: uuid.UUID, through: int) -> int:
        """Messages since this learner's last failed summary (a failing model is asked again only after
        another CHARLA_MEMORY_EVERY messages, not on every turn)."""
        failed = self._failed.get(learner_id)
        if failed is None:
            return self.res.settings.memory_every
        async with self.res.pool.connection() as conn:
            return await turns.messages_since(conn, learner_id, failed, through)

    async def summarize(self, learner_id: uuid.UUID, stored: Profile, through: int) -> None:
        """Learn from the turns after the last summary up to `through`; a failure waits for the next turn."""
        assert self.embedder is not None
        async with self.res.pool.connection() as conn:
            excerpt = await turns.since(conn, learner_id, stored.summarized_turn, through)
        if not excerpt:
            return
        try:
            learned = await self._ask(stored, excerpt)
        except (LLMError, InvalidReply) as exc:
            # An InvalidReply quotes the model's summary of the learner's words: its details are DEBUG only.
            log.warning("learner %s: no summary this time (%s); trying again later", learner_id,
                        "invalid reply" if isinstance(exc, InvalidReply) else exc)
            log.debug("learner %s: summary failure: %s", learner_id, exc)
            self._failed[learner_id] = through
            return
        self._failed.pop(learner_id, None)
        forbidden = [insights.SYSTEM, system_prompt(Profile(), Session(), "es", "en", [])]
        found = insights.memories_of(learned, forbidden)
        vectors = await self.embedder.passages([content for _, content in found])
        refs = [ref for past in excerpt for ref in past.message_ids]
        async with self.res.pool.connection() as conn, conn.transaction():
            current = await profile.load(conn, learner_id, for_update=True)
            if current.summarized_turn >= through or not await _exists(conn, learner_id):
                return  # another delivery of this turn got here first
            insights.merge(current, learned, refs, forbidden)
            current.summarized_turn = through
            await profile.save(conn, learner_id, current)
            for (kind, content), vector in zip(found, vectors, strict=True):
                await memories.add(conn, learner_id, kind, content, vector, refs)

    async def _ask(self, stored: Profile, excerpt: list[turns.Past]) -> insights.Learned:
        request = insights.prompt(stored, [(p.text, p.reply) for p in excerpt])
        completion = await self.router.complete(Route("memory", self.router.hard_chain), request)
        return parse_as(completion.text, insights.Learned)


async def _exists(conn: profile.Conn, learner_id: uuid.UUID) -> bool:
    row = await (await conn.execute("SELECT 1 FROM learners WHERE id = %s FOR SHARE", (learner_id,))).fetchone()
    return row is not None


def apply(p: Profile, turn: TurnEvent) -> None:
    """Count `turn` into the profile, unless it was counted already."""
    if turn.turn_id <= p.applied_turn:
        return
    p.applied_turn = turn.turn_id
    source = turn.message_ids[-1] if turn.message_ids else ""
    corrected: set[str] = set()
    for fix in turn.corrections:
        original, fixed = str(fix.get("original", "")), str(fix.get("corrected", ""))
        example = Example(original=original, corrected=fixed, message_id=source,
                          sentence=practice.sentence_of(turn.text, original))
        p.count_error(str(fix.get("category") or "other"), example, turn.at)
        corrected |= {w.lower() for w in _WORD.findall(original)}
    for word in turn.vocabulary:
        text = str(word.get("word", "")).strip().lower()
        if text and text not in p.vocabulary:
            p.add_word(text, str(word.get("translation", "")), turn.at)
    for used in {w.lower() for w in _WORD.findall(turn.text)} & set(p.vocabulary):
        p.see_word(used, "", turn.at, correct=used not in corrected)
