"""A roleplay mission's end: the debrief (goal reached or not, criterion by criterion, the main corrections of
its turns, useful phrases, a score) and its record in the learner's profile, committed with the reply."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

from charla.core.catalog import N_, say
from charla.journey.missions_catalog import Mission
from charla.store import profile
from charla.store.messages import Conn
from charla.tutor.activity import State, Step

GOAL_POINTS = 70  # of 100: the share of the goal's criteria met
ACCURACY_POINTS = 30  # of 100: the share of turns without a correction
SHOWN_FIXES = 3
_HEADLINES = {True: N_("mission.reached"), False: N_("mission.missed")}


def score(mission: Mission, state: State, reached: bool) -> int:
    """0-100: the goal (its criteria met; all of it when reached) and the accuracy of the learner's turns."""
    met = len(mission.criteria) if reached else len(state["met"])
    turns = int(state["turn"])
    accuracy = int(state["clean"]) / turns if turns else 0.0
    return round(GOAL_POINTS * met / len(mission.criteria) + ACCURACY_POINTS * accuracy)


def finish(mission: Mission, state: State, learner_id: uuid.UUID, native: str, now: datetime, *,
           judged: bool = False) -> Step:
    """The mission's last step: its debrief, the activity closed, the result kept in the profile. `judged`:
    the model judged the goal reached (online), which counts as reached."""
    reached = judged or len(state["met"]) == len(mission.criteria)
    points = score(mission, state, reached)
    key = f"{state.get('lang', '')}/{mission.id}"

    async def commit(conn: Conn) -> None:
        await profile.update(conn, learner_id, lambda p: p.record_mission(key, points, reached, now))

    return Step(text(mission, state, native, reached, points), commit=commit)


def text(mission: Mission, state: State, native: str, reached: bool, points: int) -> str:
    """The debrief, phone-sized: a headline, each criterion, the main corrections, phrases, the score."""
    head = say(_HEADLINES[reached], native, title=mission.title)
    checks = [f"{'✅' if reached or c.id in state['met'] else '⬜'} {c.says}" for c in mission.criteria]
    parts = [head, "\n".join(checks), _fixes(state, native),
             say("mission.phrases", native) + "\n" + "\n".join(f"• {p}" for p in mission.phrases),
             say("mission.score", native, score=points), say("mission.next", native)]
    return "\n\n".join(parts)


def _fixes(state: State, native: str) -> str:
    """The mission's main corrections: those of its most frequent categories first, each once."""
    fixes = [f for f in state["fixes"] if f.get("original") and f.get("corrected")]
    if not fixes:
        return say("mission.no_fixes", native)
    often = Counter(f.get("category", "other") for f in fixes)
    unique = list({f["original"].lower(): f for f in fixes}.values())
    unique.sort(key=lambda f: -often[f.get("category", "other")])
    lines = [f"• ~{_plain(f['original'])}~ → *{_plain(f['corrected'])}*" for f in unique[:SHOWN_FIXES]]
    return say("mission.fixes", native) + "\n" + "\n".join(lines)


def _plain(text: str) -> str:
    """One line without the characters that would break WhatsApp's formatting around it."""
    return " ".join(text.replace("~", "").replace("*", "").split())
