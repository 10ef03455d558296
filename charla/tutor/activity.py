"""The seam every guided activity plugs into: placement, roleplay missions, read-aloud and listening drills.

An activity is started by a command ("test my level", "missions") or a tapped choice, then claims the learner's
next messages until it ends. Each answer is a `Step`: what Charla says, and the activity's next state. The step
is computed from a read-only view of the learner; its state and its other writes (`commit`) are committed in the
same transaction as the reply, so a crash never advances an activity without its answer (or twice).
Choice ids an activity offers start with its kind ("placement:idk"): a tap on one goes back to it.
Implementations are registered in agents/activities.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from charla.core.events import Choice
from charla.core.runtime import Resources
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.store.session import Session
from charla.store.turns import Waiting

State = dict[str, Any]
Commit = Callable[[Conn], Awaitable[None]]


@dataclass(frozen=True)
class Tutored:
    """What the tutor answered in a roleplay step, as the activity's `Step.after` sees it."""

    corrections: list[dict[str, Any]]
    demo: bool  # the offline demo model answered (it ignores the brief: the activity says its own lines)
    done: bool  # the model judged the activity's goal reached


@dataclass
class Step:
    """What an activity answers with.

    `state` is the activity's next state (None: it ends). `tutor` hands the turn to the tutor instead, with
    this brief added to its instructions (a roleplay turn); `text` is then said before the tutor's reply.
    `commit` runs in the reply's transaction (results written to the profile, say). `after` (with `tutor`)
    sees the tutor's answer and gives the step that replaces this one: its text goes after the tutor's reply
    (a debrief, a scripted line offline), its state and commit are the ones committed."""

    text: str = ""
    choices: list[Choice] = field(default_factory=list)
    state: State | None = None
    say: tuple[str, str] | None = None  # (text, language) sent as a voice note after the text
    slow: bool = False  # that voice note spoken slowly (words to repeat)
    tutor: str | None = None
    commit: Commit | None = None
    after: Callable[[Tutored], Step] | None = None


@dataclass
class Context:
    """What an activity sees of the turn. `conn` is for reads; writes go in `Step.commit`."""

    res: Resources
    conn: Conn
    learner_id: uuid.UUID
    newest: Waiting  # the message being answered (a tap carries its id in `choice`)
    choice: str | None
    session: Session
    profile: Profile
    native: str
    target: str
    now: datetime


class Activity(Protocol):
    """One kind of guided activity. `kind` names it and prefixes the ids of the choices it offers."""

    kind: str

    async def start(self, ctx: Context, value: str) -> Step:
        """Begin (or resume, when `ctx` shows one open) with `value` from the command ("" when none)."""
        ...

    def claims(self, state: State, row: Waiting) -> bool:
        """Whether the open activity takes this message (typed words that are not a command, a voice note):
        False lets the tutor answer it, and the activity stays open."""
        ...

    async def answer(self, ctx: Context, state: State) -> Step:
        """The activity's answer to `ctx.newest` (or to the tapped `ctx.choice`)."""
        ...
