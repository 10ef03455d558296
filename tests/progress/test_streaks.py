"""A learner over 15 simulated days through the running stack (signed webhooks, the fake LLM, a movable
progress clock): a goal set in plain language, days met and missed in the learner's own timezone, a freeze
used automatically and said so, a lost streak, the 7-day milestone; the news rides on the replies. Then
`my progress`: the report's text and its chart, uploaded to Meta as a PNG and decoded."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from redis.asyncio import Redis

from charla.progress import goals
from charla.store import profile
from charla.store.profile import Day, Example, Profile
from tests.agents.test_conversation import bodies, rows, say
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA = "34600000001"
# Monday 3 June 2030, noon in Mexico City (UTC-6, no DST there any more).
DAY_1 = datetime(2030, 6, 3, 18, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = DAY_1

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(goals, "now", moved)
    return moved


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server) as running:
        yield running


async def exchange(stack: Stack, text: str) -> str:
    """Send `text` and return Charla's reply to it."""
    count = len(stack.fake.sent)
    await say(stack, text, WA)
    await stack.fake.wait_for(count + 1, seconds=15)
    return bodies(stack, WA)[-1]


async def day(stack: Stack, clock: Clock, n: int, messages: int) -> list[str]:
    """Day `n` (1-based): the learner writes `messages` times, at 10:00 and later in Mexico City."""
    replies = []
    for m in range(messages):
        clock.now = DAY_1 + timedelta(days=n - 1, hours=-2 + m)
        replies.append(await exchange(stack, f"Hoy practico un poco, día {n} mensaje {m}"))
    return replies


async def stored(stack: Stack) -> Profile:
    me = (await rows_of(stack))[0]
    async with stack.res.pool.connection() as conn:
        return await profile.load(conn, me)


async def rows_of(stack: Stack) -> list[uuid.UUID]:
    async with stack.res.pool.connection() as conn:
        return [uuid.UUID(str(r[0])) for r in await (await conn.execute("SELECT id FROM learners")).fetchall()]


async def test_fifteen_days_of_goals_freezes_and_a_milestone(stack: Stack, clock: Clock, db: str) -> None:
    clock.now = DAY_1 - timedelta(hours=3)
    assert "America/Mexico_City" in await exchange(stack, "my timezone is Mexico City")
    goal_reply = await exchange(stack, "my goal is 2 messages a day")
    assert goal_reply.startswith("🎯 Daily goal: *2 messages* a day.")
    assert goal_reply.endswith("🔥 Daily goal met! Days in a row: *1*.")  # both of today's messages count
    # 23:30 in Mexico City is 05:30 UTC of the next day: still day 1 for the learner, nothing new to say.
    clock.now = DAY_1 + timedelta(hours=11, minutes=30)
    assert "🔥" not in await exchange(stack, "Una más antes de dormir")
    met = await day(stack, clock, 2, 2)
    assert "🔥" not in met[0]
    assert met[1].endswith("Days in a row: *2*.")
    assert all("🔥" not in r for r in await day(stack, clock, 3, 1))  # missed: one message of two
    freeze = await day(stack, clock, 4, 2)
    assert "🧊 You missed a day, so I used this week's streak freeze: your streak is safe." in freeze[0]
    assert freeze[1].endswith("Days in a row: *3*.")
    # Day 5 (Friday) silent: the week's freeze is used, so the streak is lost, and a new one starts.
    lost = await day(stack, clock, 6, 2)
    assert "Your streak ended, but a new one starts today. 💪" in lost[0]
    assert lost[1].endswith("Days in a row: *1*.")
    for n in range(7, 12):
        assert (await day(stack, clock, n, 2))[1].endswith(f"Days in a row: *{n - 5}*.")
    milestone = await day(stack, clock, 12, 2)
    assert milestone[1].endswith("🏆 *7 days in a row!* Daily goal met, what a streak.")
    await day(stack, clock, 13, 2)
    # Day 14 (Sunday) silent; its week (W24) had no freeze used yet, so one keeps the streak.
    last = await day(stack, clock, 15, 2)
    assert "🧊" in last[0]
    assert last[1].endswith("Days in a row: *9*.")
    learner = await stored(stack)
    assert (learner.streak.current, learner.streak.best, learner.streak.freezes) == (9, 9, ["2030-W23", "2030-W24"])
    assert learner.streak.today.day == "2030-06-17"
    assert learner.streak.today.messages == 2
    assert await rows(db, "SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'image'") == [(0,)]


async def seed_mistakes(stack: Stack, at: datetime) -> None:
    """Five weeks of mistakes, as the memory agent counts them: ser/estar falling, gender recurring."""
    me = (await rows_of(stack))[0]

    def seed(p: Profile) -> None:
        for week in range(5):
            for category, count in (("ser_estar", 1 + week), ("gender", 2), ("preterite", week % 2)):
                for n in range(count):
                    p.count_error(category, Example(original=f"{category} {n}", corrected="ok"),
                                  at - timedelta(weeks=week))
        p.add_word("cansado", "tired", at - timedelta(days=2))
        p.level_inferred = "A2"

    async with stack.res.pool.connection() as conn:
        await profile.update(conn, me, seed)


async def test_my_progress_sends_the_report_and_its_chart(stack: Stack, clock: Clock, db: str) -> None:
    await exchange(stack, "my timezone is Mexico City")
    await exchange(stack, "my goal is 1 exercise")
    await seed_mistakes(stack, clock.now)
    count = len(stack.fake.sent)
    await say(stack, "mi progreso", WA)
    await stack.fake.wait_for(count + 2, seconds=30)
    text, image = stack.fake.sent[count], stack.fake.sent[count + 1]
    body = text["text"]["body"]
    assert body.startswith("📊 *Your week*\n💬 ")
    assert "📚 1 new words" in body
    assert "📉 Improving: *ser vs estar*" in body
    assert "🔁 Still coming back: *gender*" in body
    assert "🔥 Days in a row: 0 (best: 0)" in body
    assert "🎓 Level estimate: *A2*" in body
    assert image["type"] == "image"
    assert image["image"]["caption"] == "Mistakes per week"
    ((content_type, png),) = stack.fake.uploads
    assert content_type == "image/png"
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    assert picture.size == (1080, 1080)
    colours = picture.getcolors(maxcolors=1 << 24) or []
    drawn = sum(n for n, colour in colours if colour != (255, 255, 255))
    assert drawn > 0.03 * 1080 * 1080  # lines, labels and grid: well beyond a blank canvas
    reds = sum(n for n, colour in colours if isinstance(colour, tuple) and colour[0] > 180 and max(colour[1:3]) < 80)
    assert reds > 2000  # the first category's line (#d62728) is drawn
    recorded = "SELECT kind, status, body FROM messages WHERE reply_part = 'report'"
    await eventually(lambda: _is(rows(db, recorded), [("image", "sent", "Mistakes per week")]), 10,
                     "the chart recorded as sent")


async def _is(found: Awaitable[object], expected: object) -> bool:
    return await found == expected


async def test_a_report_that_waited_for_the_window_rides_on_the_next_reply(stack: Stack, clock: Clock) -> None:
    await exchange(stack, "Hola")
    me = (await rows_of(stack))[0]
    async with stack.res.pool.connection() as conn:
        await profile.update(conn, me, lambda p: setattr(p, "report_pending", True))
    count = len(stack.fake.sent)
    await say(stack, "Buenos días", WA)
    await stack.fake.wait_for(count + 2, seconds=30)
    reply, image = stack.fake.sent[count], stack.fake.sent[count + 1]
    assert reply["type"] == "text"
    assert "📊" not in reply["text"]["body"]
    assert image["type"] == "image"
    assert image["image"]["caption"].startswith("📊 *Your week*")
    assert not (await stored(stack)).report_pending


async def test_messages_before_a_goal_count_toward_it_and_yesterdays_do_not(stack: Stack, clock: Clock) -> None:
    clock.now = DAY_1 - timedelta(days=1)
    assert "🔥" not in await exchange(stack, "Ayer practiqué un poco")  # no goal: counted without a word
    clock.now = DAY_1
    for n in range(2):
        assert "🔥" not in await exchange(stack, f"Hoy practico un poco, mensaje {n}")
    assert (await stored(stack)).streak.today == Day(day="2030-06-03", messages=2)
    goal_reply = await exchange(stack, "my goal is 3 messages a day")
    assert goal_reply.endswith("🔥 Daily goal met! Days in a row: *1*.")  # today's two and the goal's message
