"""Cohort figures for the dashboard's overview (beside its learners active this week): the median streak of
those with a daily goal, and retention by signup week (the share of each week's new learners who wrote in the last seven
days). Read from the learners table and the profiles' streaks (charla.progress.streaks), one query each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from charla.store.messages import Conn

WEEKS = 8  # signup weeks shown


@dataclass(frozen=True)
class Cohort:
    week: str  # ISO week of signup ("2030-W23")
    learners: int
    active: int  # of them, wrote in the last seven days

    @property
    def retention(self) -> float:
        return 100.0 * self.active / self.learners if self.learners else 0.0


@dataclass(frozen=True)
class Cohorts:
    median_streak: float | None  # None: nobody has a daily goal
    with_goal: int
    by_signup: list[Cohort]


async def cohorts(conn: Conn, now: datetime) -> Cohorts:
    """The figures as of `now`."""
    since = now - timedelta(days=7)
    streak = await (await conn.execute(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce((data->'streak'->>'current')::int, 0)),
                  count(*)
           FROM profiles WHERE data ? 'goal'""")).fetchone()
    weeks = await (await conn.execute(
        """SELECT to_char(created_at, 'IYYY-"W"IW') AS week, count(*), count(*) FILTER (WHERE last_inbound_at > %s)
           FROM learners WHERE created_at > %s GROUP BY week ORDER BY week""",
        (since, now - timedelta(weeks=WEEKS)))).fetchall()
    median = float(str(streak[0])) if streak and streak[0] is not None else None
    return Cohorts(median_streak=median,
                   with_goal=int(str(streak[1])) if streak else 0,
                   by_signup=[Cohort(str(w[0]), int(str(w[1])), int(str(w[2]))) for w in weeks])
