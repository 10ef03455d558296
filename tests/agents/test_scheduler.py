"""Spaced-repetition practice with a controllable clock: once per slot (restarts, two replicas), free-form
inside the 24-hour window and a template outside it, DST, weakest item first, back-off, summaries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from agents import memory
from agents.scheduler import PracticeScheduler
from charla.core import constants as c
from charla.core.events import Identity, OutboundMessage, TurnEvent, decode_event
from charla.core.runtime import Resources
from charla.store import learners, profile
from charla.store.profile import Example, Profile
from charla.tutor import practice
from tests.agents.test_conversation import bodies, rows, say
from tests.store.test_memory import SER_ESTAR
from tests.support.harness import Stack, running_stack
from tests.support.helpers import entries

# A Monday in June (CEST, UTC+2): 19:00 in Madrid is 17:00 UTC.
AT_19 = datetime(2030, 6, 3, 17, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def learner(res: Resources, wa_id: str, last_inbound: datetime, errors: dict[str, int] | None = None,
                  at: str = "19:00") -> uuid.UUID:
    async with res.pool.connection() as conn, conn.transaction():
        learner_id = await learners.upsert(conn, Identity(wa_id=wa_id, name="Ana"), last_inbound)
        await conn.execute("UPDATE learners SET last_inbound_at = %s WHERE id = %s", (last_inbound, learner_id))

        def seed(p: Profile) -> None:
            for category, count in (errors or {}).items():
                for n in range(count):
                    p.count_error(category, Example(original=f"{category} mistake {n}", corrected="ok"), last_inbound)

        await profile.update(conn, learner_id, seed)
        await practice.set_schedule(conn, learner_id, at, list(range(7)), "Europe/Madrid", AT_19 - timedelta(hours=5))
    return learner_id


async def outbox(redis: Redis) -> list[OutboundMessage]:
    found = [decode_event(f[b"e"]) for _, f in await entries(redis, c.STREAM_OUTBOX)]
    return [e for e in found if isinstance(e, OutboundMessage)]


async def test_inside_the_window_free_form_once(res: Resources, redis_default: Redis) -> None:
    await learner(res, "34600000001", AT_19 - timedelta(hours=2))
    clock = Clock(AT_19 - timedelta(seconds=10))
    scheduler = PracticeScheduler(res, clock)
    assert await scheduler.tick() == 0  # 18:59:50
    clock.now = AT_19
    assert await scheduler.tick() == 1
    clock.now = AT_19 + timedelta(seconds=30)
    assert await scheduler.tick() == 0
    (sent,) = await outbox(redis_default)
    assert (sent.kind, sent.to.wa_id) == ("text", "34600000001")
    assert sent.text.startswith("🧠 *Practice time*")


async def test_thirty_hours_after_the_last_message_only_the_template(res: Resources, redis_default: Redis) -> None:
    await learner(res, "34600000001", AT_19 - timedelta(hours=30), errors={"ser_estar": 2})
    assert await PracticeScheduler(res, Clock(AT_19)).tick() == 1
    (sent,) = await outbox(redis_default)
    assert sent.kind == "template"
    assert sent.template is not None
    assert (sent.template.name, sent.template.language) == ("practice_nudge", "es")
    assert sent.template.body_params == ["Ana", "ser vs estar"]
    assert (sent.template.button_payload or "").startswith("practice:")


async def test_a_restart_at_18_59_50_still_sends_once(res: Resources, redis_default: Redis) -> None:
    await learner(res, "34600000001", AT_19 - timedelta(hours=1))
    before = PracticeScheduler(res, Clock(AT_19 - timedelta(seconds=10)))
    assert await before.tick() == 0
    after = PracticeScheduler(res, Clock(AT_19))  # the restarted process
    assert await after.tick() == 1
    assert await PracticeScheduler(res, Clock(AT_19 + timedelta(seconds=1))).tick() == 0
    assert await before.tick() == 0  # the old clock is past nothing new
    assert len(await outbox(redis_default)) == 1


async def test_two_replicas_send_each_slot_once(res: Resources, redis_default: Redis) -> None:
    for n in range(40):
        await learner(res, f"346000001{n:02d}", AT_19 - timedelta(hours=1))
    one, two = PracticeScheduler(res, Clock(AT_19)), PracticeScheduler(res, Clock(AT_19))
    sent = await asyncio.gather(one.tick(), two.tick(), one.tick(), two.tick())
    assert sum(sent) == 40
    assert len({m.to.wa_id for m in await outbox(redis_default)}) == 40
    assert len(await outbox(redis_default)) == 40


def test_the_dst_change_day_keeps_the_local_time() -> None:
    # Spain moves to summer time on Sunday 31 March 2030: 19:00 is 18:00 UTC the day before, 17:00 UTC that day.
    saturday = practice.next_occurrence("19:00", list(range(7)), "Europe/Madrid", datetime(2030, 3, 30, 12, tzinfo=UTC))
    sunday = practice.next_occurrence("19:00", list(range(7)), "Europe/Madrid", saturday)
    assert (saturday, sunday) == (datetime(2030, 3, 30, 18, tzinfo=UTC), datetime(2030, 3, 31, 17, tzinfo=UTC))
    autumn = practice.next_occurrence("02:30", list(range(7)), "Europe/Madrid", datetime(2030, 10, 26, 12, tzinfo=UTC))
    assert autumn == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)  # the first 02:30 of the repeated hour
    weekdays = practice.next_occurrence("19:00", [0, 1, 2, 3, 4], "Europe/Madrid", datetime(2030, 6, 1, tzinfo=UTC))
    assert weekdays.date().isoformat() == "2030-06-03"  # a Saturday asks for Monday


async def test_scheduled_across_the_dst_change(res: Resources, redis_default: Redis) -> None:
    saturday = datetime(2030, 3, 30, 18, tzinfo=UTC)
    async with res.pool.connection() as conn:
        learner_id = await learners.upsert(conn, Identity(wa_id="34600000009"), saturday - timedelta(hours=1))
        await practice.set_schedule(conn, learner_id, "19:00", list(range(7)), "Europe/Madrid",
                                    saturday - timedelta(hours=2))
    assert await PracticeScheduler(res, Clock(saturday)).tick() == 1
    (next_run,) = await rows(res.settings.database_url or "", "SELECT next_run_at FROM schedules")
    assert next_run[0] == datetime(2030, 3, 31, 17, tzinfo=UTC)


async def test_the_learners_own_sentence_comes_back_to_be_fixed(res: Resources, redis_default: Redis) -> None:
    learner_id = await learner(res, "34600000002", AT_19 - timedelta(hours=1))
    turn = TurnEvent(learner="wa:34600000002", turn_id=1, learner_id=str(learner_id), message_ids=["m1"],
                     text="Hola. Ayer yo es muy cansado después del trabajo. ¿Y tú?", reply="…", llm="groq",
                     corrections=[{"original": "yo es", "corrected": "yo estaba", "category": "ser_estar"}])
    async with res.pool.connection() as conn, conn.transaction():
        await profile.update(conn, learner_id, lambda p: memory.apply(p, turn))
    assert await PracticeScheduler(res, Clock(AT_19)).tick() == 1
    (sent,) = await outbox(redis_default)
    assert "fix this sentence: _Ayer yo es muy cansado después del trabajo._" in sent.text


def test_the_sentence_quoted_is_the_one_holding_the_mistake_and_short() -> None:
    assert practice.sentence_of("Hi! I goed home.\nThen I sleeped", "sleeped") == "Then I sleeped"
    assert practice.sentence_of("She DONT like it... really", "dont") == "She DONT like it..."
    assert practice.sentence_of("word " * 40 + "goed", "goed") == ""  # too long for a prompt: the fragment alone
    assert practice.sentence_of("nothing here", "goed") == ""


async def test_the_weakest_category_comes_first(res: Resources, redis_default: Redis) -> None:
    await learner(res, "34600000001", AT_19 - timedelta(hours=1),
                  errors={"subjunctive": 1, "ser_estar": 5, "gender_agreement": 3})
    assert await PracticeScheduler(res, Clock(AT_19)).tick() == 1
    (sent,) = await outbox(redis_default)
    assert "ser vs estar: fix this sentence: _ser_estar mistake 4_" in sent.text
    assert "```\nser   → who, what, origin" in sent.text  # the grammar table comes as formatted text
    (item,) = await rows(res.settings.database_url or "", "SELECT item FROM practice_prompts")
    assert item == ("error:ser_estar",)


async def test_silent_learners_are_written_to_less_and_told(res: Resources, redis_default: Redis) -> None:
    await learner(res, "34600000001", AT_19 - timedelta(hours=1))
    for day in range(4):
        await PracticeScheduler(res, Clock(AT_19 + timedelta(days=day))).tick()
    states = await rows(res.settings.database_url or "",
                        "SELECT status, reason FROM practice_prompts ORDER BY slot_at")
    assert [s[0] for s in states] == ["queued", "queued", "skipped", "queued"]
    assert "backing off" in str(states[2][1])
    sent = await outbox(redis_default)
    assert "write less often" in sent[-1].text


async def test_a_131049_failure_is_not_retried_within_a_day(res: Resources, redis_default: Redis) -> None:
    learner_id = await learner(res, "34600000001", AT_19 - timedelta(hours=30))
    async with res.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO messages (learner_id, direction, provider, outbound_id, kind, body, status, error,
                                     updated_at)
               VALUES (%s, 'out', 'meta', %s, 'template', 'x', 'failed', '{"code": 131049}', %s)""",
            (learner_id, uuid.uuid4(), AT_19 - timedelta(hours=2)))
    assert await PracticeScheduler(res, Clock(AT_19)).tick() == 0
    assert await outbox(redis_default) == []


async def test_one_summary_before_the_window_closes(res: Resources, redis_default: Redis) -> None:
    last = AT_19 - timedelta(hours=23, minutes=30)
    learner_id = await learner(res, "34600000001", last, at="08:00")
    async with res.pool.connection() as conn:
        row = await (await conn.execute(
            "INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body, status) "
            "VALUES (%s, 'in', 'meta', 'wamid.s', 'text', 'Yo es cansado', 'answered') RETURNING id",
            (learner_id,))).fetchone()
        assert row is not None
        await conn.execute(
            """INSERT INTO turns (learner_id, reply_to, inbound_ids, provider, corrections, vocabulary, created_at)
               VALUES (%s, %s, %s, 'groq', '[{"original": "Yo es cansado", "corrected": "Estoy cansado"}]',
                       '[{"word": "agotado"}]', %s)""", (learner_id, row[0], [row[0]], last))
    scheduler = PracticeScheduler(res, Clock(AT_19))
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    (sent,) = await outbox(redis_default)
    assert sent.text == "📝 *Today's key points*\n✏️ ~Yo es cansado~ → *Estoy cansado*\n📚 *agotado*"


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server) as running:
        yield running


async def test_practice_times_in_plain_language_and_a_graded_answer(stack: Stack, db: str) -> None:
    await say(stack, "Remind me weekdays at 19:00")
    await stack.fake.wait_for(1, seconds=10)
    assert bodies(stack)[0] == ("Saved: practice at *19:00* (Mon, Tue, Wed, Thu, Fri, Europe/Madrid). Say *stop "
                                "reminders* any time. I guessed Europe/Madrid from your number: if that's wrong, say "
                                "*my timezone is …*.")
    assert await rows(db, "SELECT timezone, local_time, days, paused FROM schedules") == [
        ("Europe/Madrid", "19:00", [0, 1, 2, 3, 4], False)]
    me = (await rows(db, "SELECT id FROM learners"))[0][0]
    async with stack.res.pool.connection() as conn:
        await conn.execute("""INSERT INTO practice_prompts (learner_id, kind, slot_at, status, item, body)
                              VALUES (%s, 'practice', now(), 'queued', 'error:ser_estar', 'Corrige: Yo es cansado')""",
                           (me,))
    stack.llm.script["groq"] = [SER_ESTAR]
    await say(stack, "Yo es cansada")
    await stack.fake.wait_for(2, seconds=10)
    system = stack.llm.requests["groq"][-1]["messages"][0]["content"]
    assert "practice exercise you sent: «Corrige: Yo es cansado»" in system
    graded = await rows(db, "SELECT item, (card->>'state')::int FROM practice_cards")
    assert graded == [("error:ser_estar", 1)]  # answered wrong: back to learning
    assert await rows(db, "SELECT answered_at IS NOT NULL FROM practice_prompts") == [(True,)]
    await say(stack, "stop reminders")
    await stack.fake.wait_for(3, seconds=10)
    assert await rows(db, "SELECT paused FROM schedules") == [(True,)]


async def test_a_word_is_reviewed_on_a_flashcard_image(stack: Stack, db: str) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    me = uuid.UUID(str((await rows(db, "SELECT id FROM learners"))[0][0]))
    async with stack.res.pool.connection() as conn:
        await profile.update(conn, me, lambda p: p.add_word("cansado", "tired", datetime.now(UTC)))
        await practice.set_schedule(conn, me, "19:00", list(range(7)), "Europe/Madrid", datetime.now(UTC))
        await conn.execute("UPDATE schedules SET next_run_at = now()")  # due now: the stack's scheduler sends it
    await stack.fake.wait_for(2, seconds=15)
    image = stack.fake.sent[1]
    assert image["type"] == "image"
    assert image["image"]["caption"].startswith("🧠 *Practice time*")
    assert "*cansado*" in image["image"]["caption"]
    ((content_type, png),) = stack.fake.uploads
    assert content_type == "image/png"
    assert png.startswith(b"\x89PNG")
