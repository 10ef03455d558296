"""Which agents exist, what streams each consumes, and how its handlers are built: the explicit wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents import conversation, memory, receipts, scheduler, sender
from charla.core import constants as c
from charla.core.runtime import Resources
from charla.core.settings import Settings
from charla.core.worker import Handler
from payments import agent as payments


@dataclass(frozen=True)
class Consumes:
    stream: str
    build: Callable[[Resources], Handler]


@dataclass(frozen=True)
class AgentSpec:
    name: str  # also its consumer-group name on every stream it consumes
    summary: str
    consumes: tuple[Consumes, ...]
    setup: Callable[[Resources], None] | None = None  # wiring beside the streams (e.g. a background loop)
    concurrency: Callable[[Settings], int] = lambda s: s.agent_concurrency  # entries handled at once

    def handlers(self, res: Resources) -> dict[str, Handler]:
        """Build the agent's stream handlers (and run its setup) on `res`."""
        if self.setup is not None:
            self.setup(res)
        return {consumes.stream: consumes.build(res) for consumes in self.consumes}


def _voice(res: Resources) -> Handler:
    """Imported when the voice agent starts: only its process loads the speech libraries."""
    from voice import agent as voice

    return voice.build(res)


AGENTS: dict[str, AgentSpec] = {spec.name: spec for spec in (
    AgentSpec("conversation", "answers each inbound learner message",
              (Consumes(c.STREAM_INBOUND, conversation.build),),
              concurrency=lambda s: max(s.agent_concurrency, conversation.SLOTS)),
    AgentSpec("memory", "keeps each learner's error map and vocabulary from their turns",
              (Consumes(c.STREAM_TURNS, memory.build),)),
    AgentSpec("payments", "applies Stripe events to entitlements and refreshes the cached ones",
              (Consumes(c.STREAM_PAYMENTS, payments.build),)),
    AgentSpec("scheduler", "sends spaced-repetition practice at each learner's own time", (),
              setup=scheduler.setup),
    AgentSpec("voice", "transcribes voice notes and speaks pronunciation examples",
              (Consumes(c.STREAM_VOICE, _voice),), concurrency=lambda s: s.voice_workers),
    AgentSpec("sender", "delivers replies through the WhatsApp provider and records delivery statuses",
              (Consumes(c.STREAM_OUTBOX, sender.build), Consumes(c.STREAM_STATUSES, receipts.build))),
)}
