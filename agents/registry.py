"""Which agents exist, what stream each consumes, and how its handler is built: the explicit wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents import conversation, sender
from charla import constants as c
from charla.runtime import Resources
from charla.worker import Handler


@dataclass(frozen=True)
class AgentSpec:
    name: str  # also its consumer-group name
    stream: str
    summary: str
    build: Callable[[Resources], Handler]


AGENTS: dict[str, AgentSpec] = {spec.name: spec for spec in (
    AgentSpec("conversation", c.STREAM_INBOUND, "answers each inbound learner message", conversation.build),
    AgentSpec("sender", c.STREAM_OUTBOX, "delivers replies through the WhatsApp provider", sender.build),
)}

# Named in Charla's contract, built by later work; asking for one says so instead of failing obscurely.
PLANNED = {"memory": "learner memory", "voice": "voice notes", "payments": "payments and limits",
           "scheduler": "spaced-repetition practice"}
