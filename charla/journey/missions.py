"""Roleplay missions as a guided activity (charla.tutor.activity): "missions" lists the ones at the learner's
level, a tap (or "missions cafe") starts one, and each learner message is a tutor turn in character (the
mission's brief added to the tutor's instructions). The mission ends when its criteria are all met (or the
model judges the goal reached), when the learner says they are done ("terminar", "end mission"), or after its
last turn, with a debrief (charla.journey.debrief). Offline, the counterpart's lines come from the catalog.

The state (PostgreSQL, with the reply) holds the mission, the turn, the criteria met and the turns' corrections;
a learner back after RESUME_AFTER with a mission open is asked whether to resume or abandon it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from charla.core.catalog import say
from charla.core.events import Choice
from charla.journey import debrief
from charla.journey import missions_catalog as catalog
from charla.journey.missions_catalog import Mission
from charla.store import activities as store
from charla.store.profile import level_to_use
from charla.store.turns import Waiting
from charla.tutor.activity import Context, State, Step, Tutored
from charla.tutor.prompt import language_name

KIND = "mission"
RESUME_AFTER = timedelta(hours=6)  # a mission left this long is offered to resume or abandon
MAX_FIXES = 12  # corrections kept for the debrief
# Typed words that end the mission with its debrief (plain "stop" stays WhatsApp's opt-out).
_ENDS = re.compile(r"(terminar|termina|terminamos|acabar|acabamos|salir|abandonar|me rindo|fin( de la mision)?|"
                   r"terminar (la )?mision|(stop|end|finish|quit)( the)? (mission|roleplay|role play)|"
                   r"end|finish|quit|i quit|i'?m done|(that'?s|that is) enough)")


@dataclass
class Missions:
    """The roleplay missions activity (registered in agents/activities.py)."""

    kind: str = KIND

    async def start(self, ctx: Context, value: str) -> Step:
        mission = catalog.find(ctx.target, value) if value else None
        if mission is not None:
            return opening(mission, ctx)
        listed = catalog.for_level(ctx.target, _level(ctx))
        if not listed:
            return Step(say("mission.none", ctx.native, language=language_name(ctx.target, ctx.native)))
        active = await store.current(ctx.conn, ctx.learner_id)
        kept = active.state if active is not None and active.kind == KIND else None  # an open mission stays open
        choices = [Choice(id=f"{KIND}:{m.id}", title=m.title, description=m.row()) for m in listed]
        # The list opens nothing (a placement or a drill in progress is left as it is): a tap on one starts it.
        return Step(say("mission.list", ctx.native, level=_level(ctx) or "A2"), choices, state=kept)

    def claims(self, state: State, row: Waiting) -> bool:
        return "id" in state and row.kind in ("text", "audio")

    async def answer(self, ctx: Context, state: State) -> Step:
        chosen = (ctx.choice or "").removeprefix(f"{KIND}:")
        if chosen == "resume":
            return _resumed(ctx, state)
        if chosen == "abandon":
            return Step(say("mission.abandoned", ctx.native))
        if chosen:
            picked = catalog.find(ctx.target, chosen)
            return opening(picked, ctx) if picked else Step(say("activity.over", ctx.native))
        mission = catalog.find(str(state.get("lang", ctx.target)), str(state.get("id", "")))
        if mission is None:  # the catalog changed under an open mission
            return Step(say("activity.over", ctx.native))
        text = ctx.newest.text or ""
        if _ENDS.fullmatch(catalog.fold(text).strip(" \t\n¿?¡!.,;:")):
            return debrief.finish(mission, state, ctx.learner_id, ctx.native, ctx.now)
        if _away(state, ctx.now) and not state.get("asked"):
            return _resume_question(mission, state, ctx)
        return _turn(mission, state, text, ctx)


def opening(mission: Mission, ctx: Context) -> Step:
    """The mission card and the counterpart's first line: no model needed."""
    card = say("mission.card", ctx.native, title=mission.title, band=mission.band, setting=mission.setting,
               counterpart=mission.counterpart, goal=mission.goal)
    state = {"id": mission.id, "lang": ctx.target, "turn": 0, "met": [], "fixes": [], "clean": 0,
             "at": ctx.now.isoformat()}
    return Step(f"{card}\n\n🗣️ {mission.opening}", state=state)


def _turn(mission: Mission, state: State, text: str, ctx: Context) -> Step:
    """A learner's line: the criteria it meets, and a tutor turn in character (the last one when the goal is
    reached or the turns are used up)."""
    met = [*state["met"], *(c for c in mission.met(text) if c not in state["met"])]
    turn = int(state["turn"]) + 1
    last = len(met) == len(mission.criteria) or turn >= mission.max_turns
    following = {**state, "turn": turn, "met": met, "at": ctx.now.isoformat(), "asked": False}
    brief = mission_brief(mission, ctx.target, following, last)
    return Step(state=following, tutor=brief, after=partial(_after, mission, following, last, ctx))


def _after(mission: Mission, state: State, last: bool, ctx: Context, tutored: Tutored) -> Step:
    """Once the tutor answered: keep the turn's corrections, and end with the debrief when it was the last
    turn (or the model judged the goal reached); offline, the counterpart's scripted line."""
    fixes = [*state["fixes"], *({k: str(c.get(k, "")) for k in ("original", "corrected", "category")}
                                for c in tutored.corrections)][-MAX_FIXES:]
    state = {**state, "fixes": fixes, "clean": int(state["clean"]) + (not tutored.corrections)}
    if last or (tutored.done and not tutored.demo):
        ended = debrief.finish(mission, state, ctx.learner_id, ctx.native, ctx.now, judged=tutored.done)
        ended.text = "\n\n".join(filter(None, [f"🗣️ {mission.closing}" if tutored.demo else "", ended.text]))
        return ended
    missing = mission.missing(state["met"])
    return Step(f"🗣️ {missing[0].prompt}" if tutored.demo and missing else "", state=state)


def mission_brief(mission: Mission, target: str, state: State, last: bool) -> str:
    """The tutor's instructions for one turn of `mission` (added to its system prompt)."""
    missing = "; ".join(c.says for c in mission.missing(state["met"])) or "nothing: the goal is reached"
    lines = [f"Roleplay mission «{mission.title}». Setting: {mission.setting}",
             f"You play {mission.counterpart}. Stay in character and speak only as them, in "
             f"{language_name(target)}, at the learner's level: one or two short sentences that move the scene on.",
             f"The learner's goal: {mission.goal} Still missing: {missing}. Lead them towards it; never do it "
             "for them.",
             "Correct lightly: only the one or two mistakes that matter most go in corrections; the reply itself "
             "stays in character.",
             'When the learner has reached the whole goal, add "done": true to your JSON.',
             f"This is turn {state['turn']} of at most {mission.max_turns}."]
    if last:
        lines.append("This is the last turn of the scene: close it in character in one sentence, with no question.")
    return "\n".join(lines)


def _resume_question(mission: Mission, state: State, ctx: Context) -> Step:
    choices = [Choice(id=f"{KIND}:resume", title=say("mission.resume", ctx.native)),
               Choice(id=f"{KIND}:abandon", title=say("mission.abandon", ctx.native))]
    return Step(say("mission.resume_ask", ctx.native, title=mission.title), choices, state={**state, "asked": True})


def _resumed(ctx: Context, state: State) -> Step:
    mission = catalog.find(str(state.get("lang", ctx.target)), str(state.get("id", "")))
    if mission is None:
        return Step(say("activity.over", ctx.native))
    missing = mission.missing(state["met"])
    line = missing[0].prompt if missing else mission.opening
    text = say("mission.resumed", ctx.native, title=mission.title, goal=mission.goal)
    return Step(f"{text}\n\n🗣️ {line}", state={**state, "asked": False, "at": ctx.now.isoformat()})


def _away(state: State, now: datetime) -> bool:
    return "at" in state and now - datetime.fromisoformat(str(state["at"])) > RESUME_AFTER


def _level(ctx: Context) -> str | None:
    return level_to_use(ctx.profile)
