"""The operator's side of progress: the learner's page shows their goal, streak and the report's chart (served
as a PNG behind the dashboard's login), the overview the median streak and retention by signup week."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from redis.asyncio import Redis

from charla.store import profile
from charla.store.profile import Example, Goal, Profile
from tests.orchestrator.test_console_admin import TOKEN, _learner
from tests.support.harness import Stack, running_stack


@pytest.fixture
async def operated(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKEN=TOKEN) as stack:
        yield stack


async def test_learner_progress_and_cohort_figures(operated: Stack) -> None:
    http, auth = operated.http, {"authorization": f"Bearer {TOKEN}"}
    learner_id = await _learner(operated, "34600000091", "Hola")
    await _learner(operated, "34600000092", "Buenas")
    now = datetime.now(UTC)

    def progress(p: Profile) -> None:
        p.goal, p.streak.current, p.streak.best, p.streak.freezes = Goal(amount=5), 6, 9, ["2030-W23"]
        for week in range(3):
            p.count_error("gender", Example(original="la problema", corrected="el problema"),
                          now - timedelta(weeks=week))

    async with operated.res.pool.connection() as conn:
        await profile.update(conn, uuid.UUID(learner_id), progress)
    page = await http.get(f"/admin/learners/{learner_id}", headers=auth)
    assert "Daily goal: 5 messages" in page.text
    assert "streak 6 days (best 9)" in page.text
    assert f'src="/admin/learners/{learner_id}/progress.png"' in page.text
    image = await http.get(f"/admin/learners/{learner_id}/progress.png", headers=auth)
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (1080, 1080)
    assert (await http.get(f"/admin/learners/{learner_id}/progress.png")).status_code in (303, 307)  # login first
    assert (await http.get(f"/admin/learners/{uuid.uuid4()}/progress.png", headers=auth)).status_code == 404
    overview = await http.get("/admin", headers=auth)
    assert 'id="median-streak"><div class="v">6</div><div class="k">median streak, days (1 with a daily goal)' \
        in overview.text
    week = now.strftime("%G-W%V")
    assert "Retention by signup week" in overview.text
    assert week in overview.text  # both learners signed up this week, both wrote: 100 %
