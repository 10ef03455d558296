"""Where the guided activities are registered, and how a turn reaches them (the seam: charla.tutor.activity).

A turn reaches an activity three ways: a command that starts one (`Command("start", kind, arg)`, parsed in
charla.tutor.commands), a tap on a choice it offered (ids prefixed with its kind), or a message the open activity
claims (`Command("step")`).
"""

from __future__ import annotations

import uuid

from agents import speaking
from agents.outgoing import Reply
from charla.core.catalog import say
from charla.core.events import utcnow
from charla.core.runtime import Resources
from charla.journey import missions, placement, preferences
from charla.journey.dictation import Dictation
from charla.journey.listening import Listening
from charla.store import activities as store
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.store.session import Session
from charla.store.turns import Waiting
from charla.tutor.activity import Activity, Commit, Context, Step, Tutored
from charla.tutor.commands import Command

# Every activity, by kind (each feature adds its line).
REGISTRY: dict[str, Activity] = {"placement": placement.Placement(), "settings": preferences.Settings(),
                                 missions.KIND: missions.Missions(), "dictation": Dictation(),
                                 "listening": Listening()}
REGISTRY.update(speak=speaking.Speak(), slow=speaking.Slower())


def kind_of(choice: str) -> str | None:
    """The activity a choice id belongs to ("placement:idk" -> "placement"), if it is one's."""
    prefix = choice.split(":", 1)[0]
    return prefix if prefix in REGISTRY else None


def claimed(active: store.Active | None, row: Waiting) -> Command | None:
    """The step of the open activity when it takes this message (which is no command)."""
    if active is None or active.kind not in REGISTRY or not REGISTRY[active.kind].claims(active.state, row):
        return None
    return Command("step")


async def run(res: Resources, learner_id: uuid.UUID, newest: Waiting, sess: Session, stored: Profile,
              languages: tuple[str, str], command: Command) -> tuple[str, Step, Commit]:
    """The activity's kind, its step for this turn and the writes that commit with the reply. `command` is
    "start" (value: the kind, arg: what the learner asked for) or "step" (value: a tapped choice, or "")."""
    native, target = languages
    async with res.pool.connection() as conn:
        active = await store.current(conn, learner_id)
        ctx = Context(res, conn, learner_id, newest, command.value or None if command.name == "step" else None,
                      sess, stored, native, target, utcnow())
        if command.name == "start":
            kind = command.value
            step = await REGISTRY[kind].start(ctx, command.arg)
        elif active is not None and active.kind in REGISTRY and (ctx.choice is None
                                                                 or kind_of(ctx.choice) == active.kind):
            kind = active.kind
            step = await REGISTRY[kind].answer(ctx, active.state)
        else:  # a choice of an activity that has ended since it was offered
            return "activity", Step(say("activity.over", native)), _nothing
    return kind, step, _persist(learner_id, kind, step, fresh=active is None or active.kind != kind)


def follow(step: tuple[Step, Commit], reply: Reply) -> None:
    """A roleplay turn's reply: the activity's words first, then the tutor's, then what the activity adds once
    it has seen them (its `after`: a debrief, say, whose state and commit replace the step's)."""
    first, commit = step
    texts = [first.text, reply.text]
    if first.after is not None:
        later = first.after(Tutored(reply.corrections, reply.usage.demo, reply.done))
        first.state, first.commit = later.state, later.commit  # read by `commit` when it runs
        texts.append(later.text)
    reply.text, reply.commit = "\n\n".join(filter(None, texts)), commit


def _persist(learner_id: uuid.UUID, kind: str, step: Step, *, fresh: bool) -> Commit:
    async def commit(conn: Conn) -> None:
        if step.state is None:
            if not fresh:  # (a start that opened nothing, a list of missions say, leaves any open one be)
                await store.finish(conn, learner_id)
        elif fresh:
            await store.begin(conn, learner_id, kind, step.state)
        else:
            await store.save(conn, learner_id, step.state)
        if step.commit is not None:
            await step.commit(conn)
    return commit


async def _nothing(conn: Conn) -> None:
    return None
