"""The streak: days in a row the learner met their daily goal, in their own timezone.

Days are settled lazily, when the learner next does something or a practice prompt is composed: every
complete day since the last settled one is met (counted when it happened), paused (`paused_until`: neither
broken nor advanced), frozen (one missed day per ISO week is forgiven automatically, and said so) or missed
(the streak starts again). News (goal met, freeze used, milestones at 7/30/100 days) waits in the profile
until a free-form message can carry it: a reply or a practice prompt inside the 24-hour window.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from charla.store.profile import Day, Profile, zone

MILESTONES = (7, 30, 100)
KEEP_FREEZES = 4  # ISO weeks of used freezes remembered
LOOKBACK_DAYS = 30  # a longer gap is settled as a missed streak without walking every day


def local_day(p: Profile, at: datetime) -> date:
    """The learner's calendar day at `at`."""
    return at.astimezone(zone(p.timezone)).date()


def paused_on(p: Profile, day: date) -> bool:
    """Whether `day` falls in the learner's pause (up to the local day `paused_until` ends it)."""
    return p.paused_until is not None and day < local_day(p, p.paused_until)


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def settle(p: Profile, at: datetime) -> None:
    """Account for every complete day before today (idempotent: a settled day is never looked at again)."""
    today = local_day(p, at)
    streak = p.streak
    last = date.fromisoformat(streak.settled) if streak.settled else today - timedelta(days=1)
    if last >= today - timedelta(days=1):
        _roll(p, today)
        return
    if (today - last).days > LOOKBACK_DAYS:
        last = today - timedelta(days=LOOKBACK_DAYS)
    day = last + timedelta(days=1)
    while day < today:
        _settle_day(p, day)
        day += timedelta(days=1)
    streak.settled = (today - timedelta(days=1)).isoformat()
    _roll(p, today)


def _settle_day(p: Profile, day: date) -> None:
    streak = p.streak
    if p.goal is None or paused_on(p, day) or (streak.today.day == day.isoformat() and streak.today.met):
        return
    if streak.current == 0:
        return
    if _week(day) not in streak.freezes:
        streak.freezes = [*streak.freezes, _week(day)][-KEEP_FREEZES:]
        streak.news.append("freeze")
        return
    streak.current = 0
    streak.news = [*(n for n in streak.news if n not in ("freeze", "lost")), "lost"]  # a lost streak needs no freeze


def _roll(p: Profile, today: date) -> None:
    """Start today's count when the day changed."""
    p.streak.settled = max(p.streak.settled, (today - timedelta(days=1)).isoformat())
    if p.streak.today.day != today.isoformat():
        p.streak.today = Day(day=today.isoformat())
        p.streak.news = [n for n in p.streak.news if not n.startswith("met:")]  # yesterday's goal is old news


def record(p: Profile, at: datetime, *, messages: int = 0, exercises: int = 0, voice_seconds: float = 0.0) -> None:
    """Count what the learner just did into today, advancing the streak the moment the goal is met."""
    settle(p, at)
    today = p.streak.today
    today.messages += messages
    today.exercises += exercises
    today.voice_seconds += voice_seconds
    if p.goal is None or today.met or paused_on(p, local_day(p, at)) or remaining(p) > 0:
        return
    today.met = True
    streak = p.streak
    streak.current += 1
    streak.best = max(streak.best, streak.current)
    streak.news.append(f"milestone:{streak.current}" if streak.current in MILESTONES else f"met:{streak.current}")


def remaining(p: Profile) -> float:
    """How much of today's goal is left (messages, exercises or minutes)."""
    if p.goal is None:
        return 0
    today = p.streak.today
    done = {"messages": today.messages, "exercises": today.exercises,
            "voice": today.voice_seconds / 60}.get(p.goal.kind, today.messages)
    return max(0.0, p.goal.amount - done)


def take_news(p: Profile) -> list[str]:
    """The news waiting to be said (emptied: it is said once)."""
    news, p.streak.news = p.streak.news, []
    return news
