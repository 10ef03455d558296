"""The daily goal: what the learner set ("my goal is 5 messages a day"), what counts toward it, and what
Charla says about it (goal set, goal met, freezes, milestones, what is left today).

Progress is counted where each turn is recorded (agents/outgoing.py, in the turn's own transaction: the turn
is recorded once, so it is counted once), so the reply that meets the goal can already say so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from charla.core.catalog import N_, say
from charla.progress import streaks
from charla.store.profile import Goal, Profile

KINDS = ("messages", "exercises", "voice")
_UNITS = {("messages", True): N_("goal.unit.message"), ("messages", False): N_("goal.unit.messages"),
          ("exercises", True): N_("goal.unit.exercise"), ("exercises", False): N_("goal.unit.exercises"),
          ("voice", True): N_("goal.unit.minute"), ("voice", False): N_("goal.unit.minutes")}
_NEWS = {"met": N_("streak.met"), "milestone": N_("streak.milestone"), "freeze": N_("streak.freeze"),
         "lost": N_("streak.lost")}


def now() -> datetime:
    """The progress clock (tests move it: days pass without waiting for them)."""
    return datetime.now(UTC)


def parse_goal(value: str) -> Goal | None:
    """A goal from a command's value ("5 messages"), None when it is not one."""
    amount, _, kind = value.partition(" ")
    if kind not in KINDS or not amount.isdigit() or not 1 <= int(amount) <= 600:
        return None
    return Goal(kind=kind, amount=int(amount))


def describe(goal: Goal, native: str) -> str:
    """"5 messages", "1 exercise", "10 minutes of voice" in the learner's language."""
    return f"{goal.amount} {say(_UNITS[goal.kind, goal.amount == 1], native)}"


def set_goal(p: Profile, goal: Goal, at: datetime) -> None:
    """Take the new goal from today on (today's progress counts toward it)."""
    streaks.settle(p, at)
    p.goal = goal
    streaks.record(p, at)


def news_lines(news: list[str], native: str) -> list[str]:
    """What each piece of streak news says."""
    lines = []
    for item in dict.fromkeys(news):
        code, _, days = item.partition(":")
        if code in _NEWS:
            lines.append(say(_NEWS[code], native, days=days))
    return lines


def left_today(p: Profile, native: str) -> str:
    """"2 messages to go today to keep your 5-day streak", or "" when met (or no goal)."""
    left = streaks.remaining(p)
    if p.goal is None or p.streak.today.met or left <= 0:
        return ""
    goal = Goal(kind=p.goal.kind, amount=max(1, round(left)))
    return say("streak.left", native, left=describe(goal, native), days=p.streak.current)
