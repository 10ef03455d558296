"""Review that fits chat (issue 22): grade buttons on a due card update its FSRS card (once, and only for the
learner they were offered to), the next card follows under the daily cap, a timed pause stops prompts and
resumes them exactly at the learner's local time across a DST change, and outside the 24-hour window nothing
goes but the practice template. Through the running stack, with the scripted LLM and a movable clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from agents import outgoing, study
from agents.scheduler import PracticeScheduler
from charla.core import constants as c
from charla.core.events import OutboundMessage, decode_event
from charla.core.runtime import Resources
from charla.tutor import commands, review, wordbook
from tests.agents.test_choices import tap
from tests.agents.test_conversation import bodies, rows, say
from tests.agents.test_scheduler import AT_19, Clock, learner
from tests.support.harness import Stack, running_stack
from tests.support.helpers import entries

WA = "34600000001"


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_REVIEW_DAILY_CAP="2",
                             CHARLA_PRACTICE_TEMPLATE="practice_nudge") as running:
        yield running


async def me(stack: Stack) -> uuid.UUID:
    return uuid.UUID(str((await rows(stack.res.settings.database_url or "", "SELECT id FROM learners"))[0][0]))


async def saved(stack: Stack, learner_id: uuid.UUID, *words: str) -> None:
    async with stack.res.pool.connection() as conn, conn.transaction():
        for word in words:
            await wordbook.save(conn, learner_id, word, "command", datetime.now(UTC) - timedelta(minutes=1), 500)


async def prompt_now(stack: Stack, learner_id: uuid.UUID) -> None:
    """A practice schedule due now: the stack's own scheduler sends it."""
    async with stack.res.pool.connection() as conn:
        await conn.execute("""INSERT INTO schedules (learner_id, rule, timezone, local_time, next_run_at)
                              VALUES (%s, '19:00 all', 'Europe/Madrid', '19:00', now())""", (learner_id,))


def buttons(message: dict[str, Any]) -> list[str]:
    action = message.get("interactive", {}).get("action", {})
    return [b["reply"]["id"] for b in action.get("buttons", [])] + \
        [r["id"] for s in action.get("sections", []) for r in s.get("rows", [])]


async def card(stack: Stack, item: str) -> tuple[Any, ...]:
    query = f"SELECT (card->>'state')::int, card->>'last_review', due FROM practice_cards WHERE item = '{item}'"  # noqa: S608
    found = await rows(stack.res.settings.database_url or "", query)
    return found[0]


async def test_grade_buttons_update_the_card_once_and_the_cap_ends_the_session(stack: Stack) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    learner_id = await me(stack)
    await saved(stack, learner_id, "cansado", "madrugar", "agotado")
    assert (await card(stack, "word:agotado"))[1] is None  # saved words feed FSRS: new cards, due now
    await prompt_now(stack, learner_id)
    await stack.fake.wait_for(2, seconds=15)
    prompt = stack.fake.sent[1]
    assert prompt["type"] == "interactive"
    assert "📚 3 due today" in prompt["interactive"]["body"]["text"]
    grades = buttons(prompt)
    assert [g.rsplit(":", 1)[1] for g in grades] == ["again", "hard", "good"]
    (item,) = await rows(stack.res.settings.database_url or "", "SELECT item FROM practice_prompts")
    word = str(item[0])

    await tap(stack, grades[2], "👍 Good", stack.fake.ids[1])
    await stack.fake.wait_for(3, seconds=10)
    _, last_review, due = await card(stack, word)
    assert last_review is not None, stack.fake.sent[2:]
    assert due > datetime.now(UTC)
    chained = stack.fake.sent[2]
    assert chained["interactive"]["body"]["text"].startswith(f"✅ *{word.removeprefix('word:')}*")
    assert "*Next review* (2 due)" in chained["interactive"]["body"]["text"]
    before = await card(stack, word)
    await tap(stack, grades[0], "🔁 Again", stack.fake.ids[1])  # graded already: its title is only words
    await stack.fake.wait_for(4, seconds=10)
    assert await card(stack, word) == before

    await tap(stack, buttons(chained)[2], "👍 Good", stack.fake.ids[2])  # the second review reaches the cap of 2
    await stack.fake.wait_for(5, seconds=10)
    assert "That's today's 2 reviews" in bodies(stack)[4]
    assert buttons(stack.fake.sent[4]) == []
    reviewed = await rows(stack.res.settings.database_url or "",
                          "SELECT count(*) FROM practice_cards WHERE card->>'last_review' IS NOT NULL")
    assert reviewed == [(2,)]


async def test_a_grade_offered_to_someone_else_is_only_words(stack: Stack) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    learner_id = await me(stack)
    await saved(stack, learner_id, "cansado")
    await prompt_now(stack, learner_id)
    await stack.fake.wait_for(2, seconds=15)
    grade = buttons(stack.fake.sent[1])[2]
    async with stack.res.pool.connection() as conn:
        assert await review.is_open(conn, learner_id, grade)
        assert not await review.is_open(conn, uuid.uuid4(), grade)
        assert not await review.is_open(conn, learner_id, grade.replace(":good", ":easy"))  # never offered


def test_pause_phrasings() -> None:
    assert commands.parse("pause practice for 2 weeks") == commands.Command("pause", "14")
    assert commands.parse("Pausa la práctica por 2 semanas") == commands.Command("pause", "14")
    assert commands.parse("pausa los recordatorios durante 3 días") == commands.Command("pause", "3")
    assert commands.parse("pause practice for a week") == commands.Command("pause", "7")
    assert commands.parse("pause practice") == commands.Command("reminders_off")  # no end: paused until resumed


def test_resume_is_local_midnight_across_dst() -> None:
    monday = datetime(2030, 3, 25, 10, tzinfo=UTC)  # CET (UTC+1); summer time starts on 31 March
    assert review.resume_at(monday, 14, "Europe/Madrid") == datetime(2030, 4, 7, 22, tzinfo=UTC)  # 00:00 CEST


async def test_a_pause_stops_and_resumes_exactly_on_time_across_dst(stack: Stack, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    monday = datetime(2030, 3, 25, 10, tzinfo=UTC)
    await say(stack, "remind me at 19:00")
    await stack.fake.wait_for(1, seconds=10)
    monkeypatch.setattr(study, "utcnow", lambda: monday)
    await say(stack, "pause practice for 2 weeks")
    await stack.fake.wait_for(2, seconds=10)
    assert bodies(stack)[1].startswith("⏸️ Practice paused for 14 days. I'll write again on *2030-04-08* at 19:00.")
    db = stack.res.settings.database_url or ""
    first = datetime(2030, 4, 8, 17, tzinfo=UTC)  # 19:00 CEST
    assert await rows(db, "SELECT next_run_at, paused_until FROM schedules") == [
        (first, datetime(2030, 4, 7, 22, tzinfo=UTC))]
    clock = Clock(monday)
    scheduler = PracticeScheduler(stack.res, clock)
    for hours in range(0, 14 * 24, 3):  # every three hours of the pause (both sides of the DST change)
        clock.now = monday + timedelta(hours=hours)
        assert await scheduler.tick() == 0
    clock.now = first - timedelta(seconds=1)
    assert await scheduler.tick() == 0
    assert await rows(db, "SELECT count(*) FROM practice_prompts") == [(0,)]
    clock.now = first
    assert await scheduler.tick() == 1  # the window is long closed: the practice template
    assert await rows(db, "SELECT slot_at, via FROM practice_prompts") == [(first, "template")]
    assert await rows(db, "SELECT next_run_at FROM schedules") == [(datetime(2030, 4, 9, 17, tzinfo=UTC),)]


async def test_resume_practice_ends_the_pause_early(stack: Stack) -> None:
    await say(stack, "remind me at 19:00")
    await stack.fake.wait_for(1, seconds=10)
    await say(stack, "pausa la práctica por 2 semanas")
    await stack.fake.wait_for(2, seconds=10)
    assert bodies(stack)[1].startswith("⏸️")
    await say(stack, "resume practice")
    await stack.fake.wait_for(3, seconds=10)
    ((next_run, until),) = await rows(stack.res.settings.database_url or "",
                                      "SELECT next_run_at, paused_until FROM schedules")
    assert until is None
    assert next_run < datetime.now(UTC) + timedelta(days=1, minutes=1)  # type: ignore[operator]


async def outbox(redis: Redis) -> list[OutboundMessage]:
    found = [decode_event(f[b"e"]) for _, f in await entries(redis, c.STREAM_OUTBOX)]
    return [e for e in found if isinstance(e, OutboundMessage)]


async def test_outside_the_window_only_the_practice_template_goes(res: Resources, redis_default: Redis) -> None:
    """15 simulated days, ticked every hour: a learner whose window closed long ago, with saved words due and
    mistakes to practise, gets the practice template and nothing else (no grades, no card, no summary)."""
    quiet = await learner(res, "34600000001", AT_19 - timedelta(hours=30), errors={"ser_estar": 3})
    chatty = await learner(res, "34600000002", AT_19 - timedelta(hours=1))
    async with res.pool.connection() as conn, conn.transaction():
        for learner_id in (quiet, chatty):
            await wordbook.save(conn, learner_id, "cansado", "command", AT_19 - timedelta(days=1), 500)
    clock = Clock(AT_19 - timedelta(hours=1))
    scheduler = PracticeScheduler(res, clock)
    for hour in range(15 * 24):
        clock.now = AT_19 - timedelta(hours=1) + timedelta(hours=hour)
        await scheduler.tick()
    sent = await outbox(redis_default)
    to_quiet = [m for m in sent if m.to.wa_id == "34600000001"]
    assert to_quiet
    assert {m.kind for m in to_quiet} == {"template"}
    assert all(m.template is not None and m.template.name == "practice_nudge" for m in to_quiet)
    assert all(not m.choices and m.flashcard is None for m in to_quiet)
    # backing off (1, 2, 4, 8 days) keeps the silent learner's count down: days 0, 1, 3, 7 and 14 at most
    assert len(to_quiet) <= 5
    first_to_chatty = next(m for m in sent if m.to.wa_id == "34600000002")
    assert first_to_chatty.kind == "choices"  # inside its window: the due card with its grades


async def test_a_grade_commits_with_its_reply_so_a_crash_between_them_loses_neither(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    learner_id = await me(stack)
    await saved(stack, learner_id, "cansado", "madrugar")
    await prompt_now(stack, learner_id)
    await stack.fake.wait_for(2, seconds=15)
    (item,) = await rows(stack.res.settings.database_url or "", "SELECT item FROM practice_prompts")
    crashed: list[str] = []
    recording = outgoing.record

    async def crash_once(*args: Any, **kwargs: Any) -> Any:
        if not crashed:  # the process dies after the grade was applied, before its reply was recorded
            crashed.append("once")
            raise ConnectionError("killed mid-turn")
        return await recording(*args, **kwargs)

    monkeypatch.setattr(outgoing, "record", crash_once)
    await tap(stack, buttons(stack.fake.sent[1])[2], "👍 Good", stack.fake.ids[1])
    await stack.fake.wait_for(3, seconds=30)
    assert crashed
    _, last_review, _ = await card(stack, str(item[0]))
    assert last_review is not None  # graded once, by the retry
    assert stack.fake.sent[2]["interactive"]["body"]["text"].startswith(f"✅ *{str(item[0]).removeprefix('word:')}*")
