"""Human takeover in a running stack: a held learner's messages are recorded, read and announced but never
answered by the model (nor counted against the quota), the operator's reply goes out through the sender, and
once handed back the learner is tutored again; their own data commands keep working meanwhile."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from charla.core import constants as c
from charla.ops import takeover
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_llm import last_user_text
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA_ID = "34600000001"


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


@pytest.fixture
async def announcements(redis_default: Redis) -> AsyncIterator[PubSub]:
    channel = redis_default.pubsub()
    await channel.subscribe(c.TAKEOVER_CHANNEL)
    yield channel
    await channel.aclose()  # type: ignore[no-untyped-call]


async def heard(channel: PubSub, seconds: float = 10) -> dict[str, Any]:
    """The next announcement of a held learner's message."""
    async with asyncio.timeout(seconds):
        while True:  # get_message waits up to 1 s for a PUBLISH each time
            note = await channel.get_message(ignore_subscribe_messages=True, timeout=1)
            if note is not None:
                return dict(json.loads(note["data"]))


async def learner_id(db: str) -> uuid.UUID:
    (row,) = await rows(db, f"SELECT id FROM learners WHERE wa_id = '{WA_ID}'")  # noqa: S608 - test value
    return uuid.UUID(str(row[0]))


async def test_a_held_learner_is_answered_by_the_operator_then_by_the_tutor_again(
        stack: Stack, db: str, redis_default: Redis, announcements: PubSub) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    me = await learner_id(db)
    assert await takeover.holder(redis_default, me) is None
    await takeover.take(redis_default, me, "marta")
    assert await takeover.holder(redis_default, me) == "marta"
    assert await takeover.held(redis_default) == {me: "marta"}

    first = await say(stack, "Necesito ayuda con el subjuntivo")
    second = await say(stack, "¿Hay alguien?")
    notes = [await heard(announcements), await heard(announcements)]  # the agent's last step for each message
    assert [(n["learner_id"], n["text"]) for n in notes] == [
        (str(me), "Necesito ayuda con el subjuntivo"), (str(me), "¿Hay alguien?")]
    assert stack.llm.calls("groq") == 1  # no model asked
    assert len(stack.fake.sent) == 1  # nothing sent
    assert await rows(db, "SELECT body, status FROM messages WHERE direction = 'in' ORDER BY id") == [
        ("Hola", "answered"), ("Necesito ayuda con el subjuntivo", "held"), ("¿Hay alguien?", "held")]

    async def read() -> bool:
        return {r["message_id"] for r in stack.fake.reads if "typing_indicator" not in r} >= {first, second}

    await eventually(read, 10, "blue ticks without typing for the held messages")

    sent_id = await takeover.reply(stack.res, me, "Hola, soy Marta. ¡Vamos con el subjuntivo!", "marta")
    await stack.fake.wait_for(2, seconds=10)
    assert stack.fake.sent[1]["to"] == WA_ID
    assert bodies(stack)[1] == "Hola, soy Marta. ¡Vamos con el subjuntivo!"

    async def sent() -> bool:
        return await rows(db, f"SELECT status FROM messages WHERE outbound_id = '{sent_id}'") == [  # noqa: S608
            ("sent",)]

    await eventually(sent, 10, "the operator's reply recorded as sent")
    async with stack.res.pool.connection() as conn:
        lines = await takeover.conversation(conn, me)
    assert [(line.direction, line.body, line.status, line.operator) for line in lines] == [
        ("in", "Hola", "answered", None), ("out", "Echo: Hola", "sent", None),
        ("in", "Necesito ayuda con el subjuntivo", "held", None), ("in", "¿Hay alguien?", "held", None),
        ("out", "Hola, soy Marta. ¡Vamos con el subjuntivo!", "sent", "marta")]
    async with stack.res.pool.connection() as conn:
        assert [line.body for line in await takeover.conversation(conn, me, limit=2)] == [
            "¿Hay alguien?", "Hola, soy Marta. ¡Vamos con el subjuntivo!"]

    assert await takeover.release(redis_default, me)
    assert not await takeover.release(redis_default, me)
    assert await takeover.holder(redis_default, me) is None
    assert await takeover.held(redis_default) == {}
    await say(stack, "Gracias")
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack)[2] == "Echo: Gracias"  # only the new message: what the operator held stays hers
    request = stack.llm.requests["groq"][-1]
    assert last_user_text(request) == "Gracias"
    assert "Hola, soy Marta" in json.dumps(request, ensure_ascii=False)  # the tutor knows what was said meanwhile
    assert await rows(db, "SELECT free_used FROM learners") == [(2,)]  # the held messages cost nothing


async def test_delete_my_data_still_works_while_held_and_ends_the_takeover(
        stack: Stack, db: str, redis_default: Redis, announcements: PubSub) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    me = await learner_id(db)
    await takeover.take(redis_default, me, "marta")
    await say(stack, "borra mis datos")
    await stack.fake.wait_for(2, seconds=10)
    assert [b["reply"]["id"] for b in stack.fake.sent[1]["interactive"]["action"]["buttons"]] == [
        "forget:yes", "forget:no"]
    await say(stack, "sí")
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack)[2].startswith("Done: I deleted")
    assert await takeover.held(redis_default) == {}
    assert await learner_id(db) != me
    assert stack.llm.calls("groq") == 1
    await say(stack, "Hola otra vez")  # a new learner, tutored by the AI
    await stack.fake.wait_for(4, seconds=10)
    assert bodies(stack)[3] == "Echo: Hola otra vez"
    assert await announcements.get_message(ignore_subscribe_messages=True, timeout=0) is None


async def test_reply_to_an_unknown_learner_is_refused(stack: Stack) -> None:
    with pytest.raises(LookupError):
        await takeover.reply(stack.res, uuid.uuid4(), "Hola", "marta")
