"""Read-aloud practice prompts (agents/readings.py): every Nth practice slot of a learner who sends voice notes
is a read-aloud challenge (text, voice note, the `speak` activity opened in the dispatch's transaction), and
their next voice note is scored as after "practice speaking"; voice off, never speaking, an open roleplay or a
closed window give the ordinary prompt."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from agents import scheduler
from agents.scheduler import PracticeScheduler
from charla.core import constants as c
from charla.core.events import OutboundMessage, SpeakRequest, decode_event
from charla.core.runtime import Resources, open_resources
from charla.store import activities, profile
from charla.tutor import practice, reading
from tests.agents.test_conversation import say
from tests.agents.test_scheduler import AT_19, Clock, learner, outbox
from tests.agents.test_speaking import challenged, record, text_of
from tests.support.harness import Stack, running_voice_stack
from tests.support.helpers import entries, eventually, make_settings
from tests.support.voice_kit import speak
from tests.voice.test_voice_agent import VOICE_ENV, rows
from voice import readaloud


async def speaker(res: Resources, wa_id: str, last_inbound: datetime, *, spoke_days_ago: int | None = 5,
                  sent: int = 2) -> uuid.UUID:
    """A scheduled learner who sent a voice note `spoke_days_ago` and was sent `sent` ordinary prompts before."""
    learner_id = await learner(res, wa_id, last_inbound)
    async with res.pool.connection() as conn:
        if spoke_days_ago is not None:
            await conn.execute(
                """INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body, status,
                                         created_at) VALUES (%s, 'in', 'meta', %s, 'audio', 'hello', 'answered', %s)""",
                (learner_id, f"wamid.{wa_id}", AT_19 - timedelta(days=spoke_days_ago)))
        for n in range(sent):
            await conn.execute(
                """INSERT INTO practice_prompts (learner_id, kind, slot_at, status, via, body)
                   VALUES (%s, 'practice', %s, 'queued', 'text', 'earlier')""",
                (learner_id, AT_19 - timedelta(days=n + 1)))
    return learner_id


async def prompts(redis: Redis) -> list[OutboundMessage]:
    """The prompts sent (not the weekly report a Monday's first slot may bring: the learner spoke last week)."""
    return [m for m in await outbox(redis) if m.kind != "image"]


async def spoken(redis: Redis) -> list[SpeakRequest]:
    found = [decode_event(f[b"e"]) for _, f in await entries(redis, c.STREAM_VOICE)]
    return [e for e in found if isinstance(e, SpeakRequest)]


async def kinds(res: Resources) -> list[str]:
    return [str(r[0]) for r in await rows(res.settings.database_url or "",
                                          "SELECT kind FROM practice_prompts ORDER BY slot_at")]


async def test_the_third_prompt_is_a_reading_sent_spoken_and_opened(res: Resources, redis_default: Redis) -> None:
    me = await speaker(res, "34600000001", AT_19 - timedelta(hours=2))
    assert await PracticeScheduler(res, Clock(AT_19)).tick() >= 1
    (sent,) = await prompts(redis_default)
    async with res.pool.connection() as conn:
        opened = await activities.current(conn, me)
    assert opened is not None
    assert opened.kind == "speak"
    sentence = opened.state["sentence"]
    assert opened.state == {"sentence": sentence, "tries": 0}  # what "practice speaking" opens
    assert sentence in {s.text for s in reading.bank("es")}
    assert sent.text.startswith("🧠 *Practice time*")
    assert f"“{sentence}”" in sent.text
    assert [x.id for x in sent.choices] == ["speak:next", "slow:again", "speak:stop"]
    (note,) = await spoken(redis_default)
    assert (note.text, note.language, note.to.wa_id) == (sentence, "es", "34600000001")
    db = res.settings.database_url or ""
    assert await rows(db, "SELECT kind, body, status, outbound_id::text FROM messages WHERE direction = 'out'"
                          " AND kind <> 'image' ORDER BY id") == [
        ("choices", sent.text, "queued", sent.outbound_id), ("voice", sentence, "queued", note.outbound_id)]
    assert await rows(db, "SELECT kind, status FROM practice_prompts WHERE body <> 'earlier'") == [
        ("reading", "queued")]


async def test_every_third_prompt_is_a_reading(res: Resources, redis_default: Redis) -> None:
    me = await speaker(res, "34600000001", AT_19 - timedelta(hours=2), sent=0)
    for day in range(6):
        slot = AT_19 + timedelta(days=day)
        async with res.pool.connection() as conn:  # the learner answered yesterday's prompt: the window is open
            await conn.execute("UPDATE learners SET last_inbound_at = %s WHERE id = %s",
                               (slot - timedelta(hours=1), me))
        assert await PracticeScheduler(res, Clock(slot)).tick() >= 1
    assert await kinds(res) == ["practice", "practice", "reading", "practice", "practice", "reading"]
    assert len(await spoken(redis_default)) == 2


async def test_no_reading_when_the_setting_is_zero(db: str, default_redis_server: str, redis_default: Redis) -> None:
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, CHARLA_PRACTICE_READING_EVERY="0")
    async with open_resources(settings, pool_size=2) as res:
        await speaker(res, "34600000001", AT_19 - timedelta(hours=2))
        assert await PracticeScheduler(res, Clock(AT_19)).tick() >= 1
        assert (await kinds(res))[-1] == "practice"
    assert await spoken(redis_default) == []


@pytest.mark.parametrize("case", ["voice off", "never spoke", "spoke 40 days ago", "in a roleplay"])
async def test_the_ordinary_prompt_for_a_learner_who_does_not_speak(res: Resources, redis_default: Redis,
                                                                     case: str) -> None:
    me = await speaker(res, "34600000001", AT_19 - timedelta(hours=2),
                       spoke_days_ago={"never spoke": None, "spoke 40 days ago": 40}.get(case, 5))
    async with res.pool.connection() as conn:
        if case == "voice off":
            await profile.update(conn, me, lambda p: setattr(p.preferences, "voice", False))
        if case == "in a roleplay":
            await activities.begin(conn, me, "mission", {"id": "cafe", "turn": 2})
            await conn.execute("UPDATE activities SET updated_at = %s", (AT_19 - timedelta(hours=2),))  # (the clock)
    assert await PracticeScheduler(res, Clock(AT_19)).tick() >= 1
    (sent,) = await prompts(redis_default)
    assert (await kinds(res))[-1] == "practice"
    assert "Read this aloud" not in sent.text
    assert await spoken(redis_default) == []
    async with res.pool.connection() as conn:
        opened = await activities.current(conn, me)
    assert (opened.kind if opened else None) == ("mission" if case == "in a roleplay" else None)


async def test_outside_the_window_the_template_and_the_reading_waits(res: Resources, redis_default: Redis) -> None:
    me = await speaker(res, "34600000001", AT_19 - timedelta(hours=30))
    assert await PracticeScheduler(res, Clock(AT_19)).tick() >= 1
    (sent,) = await prompts(redis_default)
    assert sent.kind == "template"
    assert await spoken(redis_default) == []
    assert (await kinds(res))[-1] == "practice"
    async with res.pool.connection() as conn:  # the learner writes back: the next slot is the reading
        assert await activities.current(conn, me) is None
        await conn.execute("UPDATE learners SET last_inbound_at = %s WHERE id = %s", (AT_19 + timedelta(hours=1), me))
    assert await PracticeScheduler(res, Clock(AT_19 + timedelta(days=1))).tick() >= 1
    assert (await kinds(res))[-1] == "reading"
    assert len(await spoken(redis_default)) == 1


async def test_a_voice_note_lost_in_a_crash_is_asked_for_again(res: Resources, redis_default: Redis,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    me = await speaker(res, "34600000001", AT_19 - timedelta(hours=2))

    async def killed(*_: object) -> None:
        raise RuntimeError("killed after commit")

    monkeypatch.setattr(scheduler, "_speak", killed)
    with pytest.raises(RuntimeError):
        await PracticeScheduler(res, Clock(AT_19)).tick()
    assert await spoken(redis_default) == []
    db = res.settings.database_url or ""
    ((state,),) = await rows(db, "SELECT state FROM activities")  # all of it committed together
    assert await rows(db, "SELECT body, status FROM messages WHERE kind = 'voice'") == [(state["sentence"], "queued")]
    monkeypatch.undo()
    async with res.pool.connection() as conn:  # (the test's clock: the note was recorded at the slot)
        await conn.execute("UPDATE messages SET created_at = %s WHERE kind = 'voice' AND learner_id = %s", (AT_19, me))
    await PracticeScheduler(res, Clock(AT_19 + timedelta(minutes=2))).tick()
    (note,) = await spoken(redis_default)
    assert note.text == state["sentence"]


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_voice_stack(db, default_redis_server, CHARLA_VOICE_MAX_SECONDS="20",
                                   CHARLA_PRACTICE_READING_EVERY="1", **VOICE_ENV) as running:
        yield running


async def test_a_scheduled_reading_is_spoken_and_the_learners_reading_scored(stack: Stack, db: str) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=30)
    me = uuid.UUID(str((await rows(db, "SELECT id FROM learners"))[0][0]))
    async with stack.res.pool.connection() as conn:
        await conn.execute("""INSERT INTO messages (learner_id, direction, provider, provider_message_id, kind, body,
                                                    status, created_at)
                              VALUES (%s, 'in', 'meta', 'wamid.spoke', 'audio', 'hello', 'answered',
                                      now() - interval '3 days')""", (me,))
        await practice.set_schedule(conn, me, "19:00", list(range(7)), "Europe/Madrid", datetime.now(UTC))
        await conn.execute("UPDATE schedules SET next_run_at = now()")  # due now: the stack's scheduler sends it
    await stack.fake.wait_for(3, seconds=60)
    prompt, voice = stack.fake.sent[1:3]
    sentence = await challenged(db, prompt, voice)

    # the learner reads it with its longest word said as nonsense: scored as a reading they started themselves
    wrong = max(readaloud.tokens(sentence), key=len)
    await record(stack, speak(sentence.replace(wrong, "blorgatrix", 1), "en"), 1, 5)
    card, repeat = text_of(stack.fake.sent[3]), stack.fake.sent[4]
    assert f"*{wrong}*❗" in card or f"~{wrong}~" in card
    assert "/100*" in card
    assert repeat["type"] == "audio"
    ((data,),) = await rows(db, "SELECT data FROM profiles")
    assert data["speaking"]["readings"] == 1
    await eventually(lambda: _answered(db), 5, "the reading prompt answered")


async def _answered(db: str) -> bool:
    return await rows(db, "SELECT kind, answered_at IS NOT NULL FROM practice_prompts") == [("reading", True)]
