"""Which agents exist, what streams each consumes, and how its handlers are built: the explicit wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents import conversation, memory, receipts, sender
from charla import constants as c
from charla.runtime import Resources
from charla.worker import Handler
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


AGENTS: dict[str, AgentSpec] = {spec.name: spec for spec in (
    AgentSpec("conversation", "answers each inbound learner message",
              (Consumes(c.STREAM_INBOUND, conversation.build),)),
    AgentSpec("memory", "keeps each learner's error map and vocabulary from their turns",
              (Consumes(c.STREAM_TURNS, memory.build),)),
    AgentSpec("payments", "applies Stripe events to entitlements and refreshes the cached ones",
              (Consumes(c.STREAM_PAYMENTS, payments.build),)),
    AgentSpec("sender", "delivers replies through the WhatsApp provider and records delivery statuses",
              (Consumes(c.STREAM_OUTBOX, sender.build), Consumes(c.STREAM_STATUSES, receipts.build))),
)}

# Named in Charla's contract, built by later work; asking for one says so instead of failing obscurely.
PLANNED = {"voice": "voice notes",
           "scheduler": "spaced-repetition practice"}
