"""The weekly report at the learner's practice time (the scheduler, a controllable clock): inside the 24-hour
window it follows the practice prompt as a chart image with the report as its caption, once a week; outside
the window only the practice template goes out, day after day, and the report and the streak news wait."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta

import pytest
from PIL import Image
from redis.asyncio import Redis

from agents import weekly
from agents.scheduler import PracticeScheduler
from charla.channels import media
from charla.core.runtime import Resources
from charla.progress import deliver
from charla.store import profile
from charla.store.profile import Example, Goal, Profile
from tests.agents.conftest import res as scheduler_res
from tests.agents.test_conversation import rows
from tests.agents.test_scheduler import AT_19, Clock, learner, outbox

res = scheduler_res


async def with_goal(res: Resources, learner_id: uuid.UUID, *news: str) -> None:
    def change(p: Profile) -> None:
        p.timezone, p.goal = "Europe/Madrid", Goal(kind="messages", amount=3)
        p.streak.current, p.streak.news = 4, list(news)

    async with res.pool.connection() as conn:
        await profile.update(conn, learner_id, change)


async def wrote(res: Resources, learner_id: uuid.UUID, at: datetime) -> None:
    """The learner wrote at `at` (their window is open for a day from then)."""
    async with res.pool.connection() as conn:
        await conn.execute("UPDATE learners SET last_inbound_at = %s, created_at = least(created_at, %s) "
                           "WHERE id = %s", (at, at - timedelta(days=30), learner_id))
        await conn.execute("""INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body,
                                                    status, created_at)
                              VALUES (%s, 'in', 'meta', %s, 'text', 'Hola', 'answered', %s)""",
                           (learner_id, f"wamid.{uuid.uuid4().hex}", at))


async def recorded_at(res: Resources, learner_id: uuid.UUID, at: datetime) -> None:
    """Date what the scheduler recorded for `learner_id` by the test's clock (the database wrote its own)."""
    async with res.pool.connection() as conn:
        await conn.execute("UPDATE messages SET created_at = %s WHERE learner_id = %s AND direction = 'out'",
                           (at, learner_id))
        await conn.execute("UPDATE practice_prompts SET created_at = %s WHERE learner_id = %s", (at, learner_id))


async def test_inside_the_window_the_report_follows_the_prompt_once_a_week(res: Resources,
                                                                            redis_default: Redis) -> None:
    me = await learner(res, "34600000010", AT_19 - timedelta(hours=2), errors={"ser_estar": 3, "gender": 1})
    await with_goal(res, me, "freeze")
    await wrote(res, me, AT_19 - timedelta(hours=2))
    clock = Clock(AT_19 + timedelta(seconds=5))
    assert await PracticeScheduler(res, clock).tick() == 2
    prompt, report = await outbox(redis_default)
    assert prompt.kind == "text"
    assert prompt.text.startswith(
        "🧊 You missed a day, so I used this week's streak freeze: your streak is safe.\n\n"
        "🔥 3 messages to go today to keep your streak (*4* days in a row).\n\n")
    assert report.kind == "image"
    assert report.text.startswith("📊 *Your week*")
    assert "🔥 Days in a row: 4" in report.text
    png = await media.kept(redis_default, f"img:{report.image}")
    assert png is not None
    assert Image.open(io.BytesIO(png)).size == (1080, 1080)
    for _ in range(6):  # Tuesday to Sunday, same ISO week, the learner writing daily: the prompt alone
        clock.now += timedelta(days=1)
        await wrote(res, me, clock.now - timedelta(hours=1))
        assert await PracticeScheduler(res, clock).tick() == 1
    assert [m.kind for m in await outbox(redis_default)] == ["text", "image", *["text"] * 6]
    clock.now += timedelta(days=1)  # next Monday: the next week's report
    await wrote(res, me, clock.now - timedelta(hours=1))
    assert await PracticeScheduler(res, clock).tick() == 2


async def test_outside_the_window_nothing_but_the_template(res: Resources, redis_default: Redis, db: str) -> None:
    me = await learner(res, "34600000011", AT_19 - timedelta(hours=30), errors={"ser_estar": 2})
    await with_goal(res, me, "met:4")
    await wrote(res, me, AT_19 - timedelta(hours=30))
    clock = Clock(AT_19 + timedelta(seconds=5))
    for _ in range(9):  # nine daily slots across two ISO weeks, the learner silent throughout
        await PracticeScheduler(res, clock).tick()
        clock.now += timedelta(days=1)
    sent = await outbox(redis_default)
    assert sent
    assert {m.kind for m in sent} == {"template"}
    assert await rows(db, "SELECT kind, count(*) FROM messages WHERE direction = 'out' GROUP BY kind") == [
        ("template", len(sent))]
    async with res.pool.connection() as conn:
        kept = await profile.load(conn, me)
    # The report and the news wait for the learner's next message (old news dropped: the streak was lost).
    assert kept.report_pending
    assert kept.streak.news == ["lost"]


def test_an_old_error_map_loads_and_keeps_counting_by_week() -> None:
    old = {"timezone": "Europe/Madrid", "errors": {"ser_estar": {"count": 7, "last_seen": "2030-05-01T10:00:00Z",
                                                                 "examples": []}}}
    p = Profile.model_validate(old)
    assert p.errors["ser_estar"].weeks == {}
    for week in range(14):
        p.count_error("ser_estar", Example(original="es cansado", corrected="está cansado"),
                      AT_19 + timedelta(weeks=week))
    stat = p.errors["ser_estar"]
    assert stat.count == 21  # what was there, and every new one
    assert len(stat.weeks) == 12  # bounded: the last twelve ISO weeks
    assert min(stat.weeks) == "2030-W25"
    assert max(stat.weeks) == "2030-W36"


async def test_a_chart_that_cannot_be_drawn_stops_no_prompt(res: Resources, redis_default: Redis,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    me = await learner(res, "34600000012", AT_19 - timedelta(hours=2), errors={"ser_estar": 3})
    await with_goal(res, me)
    await wrote(res, me, AT_19 - timedelta(hours=2))

    async def broken(*_: object, **__: object) -> str:
        raise ValueError("cannot plot this")

    monkeypatch.setattr(deliver, "keep_chart", broken)
    assert await PracticeScheduler(res, Clock(AT_19 + timedelta(seconds=5))).tick() == 1
    assert [m.kind for m in await outbox(redis_default)] == ["text"]  # the prompt went; the report did not
    await recorded_at(res, me, AT_19 + timedelta(seconds=5))
    await PracticeScheduler(res, Clock(AT_19 + timedelta(minutes=1))).tick()  # the chart is tried once more
    assert [m.kind for m in await outbox(redis_default)] == ["text"]
    db = res.settings.database_url or ""
    assert await rows(db, "SELECT status FROM messages WHERE kind = 'image'") == [("failed",)]  # then given up


async def test_a_report_lost_in_a_crash_after_commit_is_drawn_and_sent_by_a_later_pass(
        res: Resources, redis_default: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    me = await learner(res, "34600000013", AT_19 - timedelta(hours=2), errors={"ser_estar": 3})
    await with_goal(res, me)
    await wrote(res, me, AT_19 - timedelta(hours=2))

    async def killed(*_: object) -> None:
        raise RuntimeError("the scheduler died after its batch committed")

    monkeypatch.setattr(weekly, "with_chart", killed)
    with pytest.raises(RuntimeError):
        await PracticeScheduler(res, Clock(AT_19 + timedelta(seconds=5))).tick()
    assert await outbox(redis_default) == []  # committed, nothing handed to the outbox
    monkeypatch.undo()
    await recorded_at(res, me, AT_19 + timedelta(seconds=5))
    await PracticeScheduler(res, Clock(AT_19 + timedelta(minutes=1))).tick()
    prompt, report = await outbox(redis_default)
    assert (prompt.kind, report.kind) == ("text", "image")
    assert report.text.startswith("📊 *Your week*")
    assert await media.kept(redis_default, f"img:{report.image}") is not None
    drawn = await rows(res.settings.database_url or "", "SELECT payload FROM messages WHERE kind = 'image'")
    assert drawn == [({"report": True, "published": True},)]  # handed over: no later pass draws it again
    await PracticeScheduler(res, Clock(AT_19 + timedelta(minutes=2))).tick()
    assert [m.kind for m in await outbox(redis_default)] == ["text", "image"]
