"""The one-statement count of a turn for a learner without a goal (deliver.count_quietly) leaves the profile
exactly as the full count (streaks.record under the row lock) would, and declines every profile it must not
count: a goal, streak news or a report waiting, another timezone. A learner's first turn makes the row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest

from charla.core.events import Identity
from charla.progress import deliver, streaks
from charla.store import learners, profile
from charla.store.profile import Day, Goal, Profile, Streak

AT = datetime(2030, 6, 4, 3, 30, tzinfo=UTC)  # 4 June in UTC, still 3 June in Mexico City


@pytest.fixture
async def conn(db: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as connection:
        yield connection


async def learner(conn: psycopg.AsyncConnection[tuple[object, ...]], start: Profile | None) -> uuid.UUID:
    learner_id = await learners.upsert(conn, Identity(wa_id=f"346{uuid.uuid4().int % 10**8:08d}"))
    if start is not None:
        await profile.save(conn, learner_id, start)
    return learner_id


@pytest.mark.parametrize("start", [
    None,  # a learner's first turn: no profile row yet
    Profile(),  # nothing counted yet
    Profile(timezone="America/Mexico_City", streak=Streak(settled="2030-05-20", today=Day(
        day="2030-06-03", messages=3, voice_seconds=4.0))),  # the same local day: added to it
    Profile(streak=Streak(current=4, best=9, settled="2030-06-01", freezes=["2030-W22"], today=Day(
        day="2030-06-01", messages=7, exercises=2, met=True))),  # a new day starts from zero
    Profile(name="Ana", streak=Streak(settled="2030-06-09")),  # a settled day later than yesterday is kept
], ids=["no row", "empty", "same day", "new day", "settled later"])
async def test_it_counts_as_the_full_count_would(conn: psycopg.AsyncConnection[tuple[object, ...]],
                                                 start: Profile | None) -> None:
    learner_id = await learner(conn, start)
    async with conn.transaction():
        assert await deliver.count_quietly(conn, learner_id, AT, start.timezone if start else None, messages=2,
                                           exercises=1, voice_seconds=12.5)
    expected = start.model_copy(deep=True) if start else Profile()
    streaks.record(expected, AT, messages=2, exercises=1, voice_seconds=12.5)
    assert await profile.load(conn, learner_id) == expected


@pytest.mark.parametrize("start", [
    Profile(goal=Goal(kind="messages", amount=3)),
    Profile(streak=Streak(news=["freeze"])),
    Profile(report_pending=True),
    Profile(timezone="Europe/Madrid"),  # counted under another timezone than the profile's
], ids=["goal", "news", "report", "timezone"])
async def test_it_leaves_every_other_profile_to_the_full_count(conn: psycopg.AsyncConnection[tuple[object, ...]],
                                                               start: Profile) -> None:
    learner_id = await learner(conn, start)
    async with conn.transaction():
        assert not await deliver.count_quietly(conn, learner_id, AT, None, messages=2, exercises=1, voice_seconds=1)
    assert await profile.load(conn, learner_id) == start
