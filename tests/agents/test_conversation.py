"""The conversation agent in a running stack: signed webhooks in, the real SDKs against the fake LLM
server, replies out through the fake Graph API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from itertools import count

import psycopg
import pytest
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.events import TurnEvent, decode_event
from tests.support.fake_llm import error, last_user_text
from tests.support.harness import Stack, running_stack
from tests.support.helpers import entries, eventually
from tests.support.payloads import text_webhook
from tests.tutor.test_tutor import FIX

_ids = count()


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def say(stack: Stack, text: str, wa_id: str = "34600000001") -> str:
    wamid = f"wamid.conv{next(_ids)}"
    assert (await stack.post(text_webhook(wa_id, wamid, text))).status_code == 200
    return wamid


def bodies(stack: Stack, wa_id: str = "34600000001") -> list[str]:
    return [str(m.get("text", {}).get("body") or m.get("interactive", {}).get("body", {}).get("text"))
            for m in stack.fake.sent if m["to"] == wa_id]


async def rows(db: str, query: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        return list(await (await conn.execute(query.encode())).fetchall())


async def test_a_burst_reaches_the_model_in_order_and_others_are_not_delayed(stack: Stack) -> None:
    release = asyncio.Event()
    stack.llm.hold["Yo"] = release  # the model is slow on the first message of the burst
    await say(stack, "Yo")
    await stack.llm.wait_for("groq", 1, seconds=10)
    await say(stack, "tengo")
    await say(stack, "hambre")
    await say(stack, "Hola, soy Beto", wa_id="34600000002")
    await stack.fake.wait_for(1, seconds=10)  # another learner is answered while the burst waits
    assert bodies(stack, "34600000002") == ["Echo: Hola, soy Beto"]
    release.set()
    await stack.fake.wait_until(lambda: len(stack.fake.echoed("34600000001")) == 3, seconds=10)
    assert stack.fake.echoed("34600000001") == ["Yo", "tengo", "hambre"]  # each once, in order
    asked = [last_user_text(r) for r in stack.llm.requests["groq"] if "Beto" not in last_user_text(r)]
    assert asked == ["Yo", "tengo\nhambre"]  # what arrived while the model was busy is answered together


async def test_all_providers_down_gives_one_honest_delay_then_one_answer(stack: Stack, db: str) -> None:
    stack.llm.down = {"groq": error("groq_error_503.json"), "anthropic": error("anthropic_error_500.json")}
    await say(stack, "¿Qué tal?")
    await stack.fake.wait_for(1, seconds=10)
    assert bodies(stack)[0].startswith("Give me a moment")
    await say(stack, "¿Hola?")  # still down: no second delay message
    await stack.llm.wait_for("groq", 3, seconds=10)  # the deferred turn is retried meanwhile
    stack.llm.down = {}
    await stack.fake.wait_for(2, seconds=20)
    await stack.fake.wait_until(lambda: len(stack.fake.echoed()) >= 3, seconds=10)
    assert bodies(stack)[1:] == ["Echo: ¿Qué tal?\n¿Hola?"]  # both answered together, once
    assert await rows(db, "SELECT count(*) FROM pending_turns") == [(0,)]
    assert await rows(db, "SELECT status, count(*) FROM messages WHERE direction = 'in' GROUP BY 1") == [
        ("answered", 2)]


async def test_hard_grammar_goes_to_claude_and_the_turn_is_recorded(stack: Stack, db: str,
                                                                    redis_default: Redis) -> None:
    stack.llm.script["anthropic"] = [FIX]
    wamid = await say(stack, "¿Por qué se usa estar y no ser en 'estoy cansado'?")
    await stack.fake.wait_for(1, seconds=10)
    assert "✏️ ~Yo es cansado~ → *Estoy cansado*" in bodies(stack)[0]
    (turn,) = await rows(db, "SELECT provider, route, input_tokens > 0, cost_usd > 0, corrections->0->>'category' "
                             "FROM turns")
    assert turn == ("anthropic", "hard_grammar", True, True, "ser_estar")

    async def published() -> list[TurnEvent]:
        return [e for _, f in await entries(redis_default, c.STREAM_TURNS)
                if isinstance(e := decode_event(f[b"e"]), TurnEvent)]

    await eventually(published, 10, "the turn event")
    (event,) = await published()
    assert (event.message_ids, event.llm, event.corrections[0]["category"]) == ([wamid], "anthropic", "ser_estar")
    session = json.loads(await redis_default.get(c.SESSION_KEY.format(learner="wa:34600000001")) or "{}")
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"]
    assert session["errors"] == {"ser_estar": 1}
    assert 0 < await redis_default.ttl(c.SESSION_KEY.format(learner="wa:34600000001")) <= 24 * 3600

    async def counted() -> object:  # the memory agent counted the correction into the error map
        found = await rows(db, "SELECT data->'errors'->'ser_estar'->>'count' FROM profiles")
        return found == [("1",)]

    await eventually(counted, 10, "the error map updated")
    await say(stack, "what are my mistakes?")
    await stack.fake.wait_for(2, seconds=10)
    assert "*ser vs estar* ×1" in bodies(stack)[1]


async def test_commands_change_the_profile_and_answer_in_the_native_language(stack: Stack, db: str) -> None:
    await say(stack, "Mi idioma nativo es el español")
    await stack.fake.wait_for(1, seconds=10)
    await say(stack, "I want to learn English")
    await stack.fake.wait_for(2, seconds=10)
    await say(stack, "mi nivel es B2")
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack) == ["Anotado: tu idioma nativo es el español. Te explicaré en él.",
                             "¡Genial, practiquemos inglés! Cuéntame qué tal tu día.", "Entendido: tu nivel es *B2*."]
    (profile,) = await rows(db, "SELECT data FROM profiles")
    data = profile[0]
    assert isinstance(data, dict)
    assert (data["native_language"], data["target_language"], data["level"]) == ("es", "en", "B2")
    assert set(data["provenance"]) == {"native", "target", "level"}
    assert stack.llm.calls("groq") == 0  # commands need no model
    await say(stack, "How are you?")
    await stack.fake.wait_for(4, seconds=10)
    system = stack.llm.requests["groq"][0]["messages"][0]["content"]
    for fact in ("English tutor", "native language is Spanish", "level is B2"):
        assert fact in system


async def test_delete_my_data_asks_once_then_forgets_everything(stack: Stack, db: str, redis_default: Redis) -> None:
    await say(stack, "Hola, me llamo Ana")
    await stack.fake.wait_for(1, seconds=10)
    await say(stack, "borra mis datos")
    await stack.fake.wait_for(2, seconds=10)
    question = stack.fake.sent[1]
    assert question["type"] == "interactive"
    assert [b["reply"]["id"] for b in question["interactive"]["action"]["buttons"]] == ["forget:yes", "forget:no"]
    await say(stack, "sí")
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack)[2].startswith("Done: I deleted")
    assert await rows(db, "SELECT count(*) FROM learners") == [(1,)]  # a new learner, knowing nothing
    assert await rows(db, "SELECT direction, body FROM messages ORDER BY id") == [
        ("in", "sí"), ("out", bodies(stack)[2])]
    assert await redis_default.get(c.SESSION_KEY.format(learner="wa:34600000001")) is None


async def test_topics_are_offered_as_a_list_and_a_numbered_answer_picks_one(stack: Stack) -> None:
    await say(stack, "topics")
    await stack.fake.wait_for(1, seconds=10)
    rows_offered = stack.fake.sent[0]["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows_offered][:2] == ["topic:verbs", "topic:food"]
    await say(stack, "2")  # as a Twilio learner would answer numbered choices
    await stack.fake.wait_for(2, seconds=10)
    system = stack.llm.requests["groq"][0]["messages"][0]["content"]
    assert "Current topic: food." in system


async def test_a_slow_model_gets_one_honest_delay_within_patience_then_the_answer(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    """Found by the outage run: a model slower than the timeout left learners a minute without a word."""
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0", CHARLA_PATIENCE_S="0.3") as stack:
        stack.llm.delay_s["groq"] = 1.5  # slower than patience, well within the model timeout
        await say(stack, "¿Qué tal?")
        await stack.fake.wait_for(1, seconds=10)
        assert bodies(stack) == ["Give me a moment… I'm having trouble thinking right now. I'll answer you shortly."]
        await stack.fake.wait_for(2, seconds=10)
        assert bodies(stack)[1] == "Echo: ¿Qué tal?"
        stack.llm.delay_s["groq"] = 0
        await say(stack, "¿Y tú?")  # a quick answer: no delay message
        await stack.fake.wait_for(3, seconds=10)
        assert bodies(stack)[2:] == ["Echo: ¿Y tú?"]
        assert stack.llm.calls("groq") == 2  # waiting is not retrying
        assert await rows(db, "SELECT reply_part, count(*) FROM messages WHERE direction = 'out' GROUP BY 1 "
                              "ORDER BY 1") == [("delay", 1), ("reply", 2)]


async def test_a_command_sent_while_the_model_is_busy_is_answered_once_as_the_command(stack: Stack) -> None:
    """Found on the console (issue 20): "help" typed while the demo model was still answering was batched
    with the message before it and went to the model as conversation. The command is answered alone,
    the model never sees it, and the message it arrived behind is still tutored."""
    release = asyncio.Event()
    stack.llm.hold["Yo soy cansado"] = release
    await say(stack, "Yo soy cansado")
    await stack.llm.wait_for("groq", 1, seconds=10)
    await say(stack, "y tengo hambre")
    await say(stack, "help")
    release.set()
    await stack.fake.wait_until(lambda: len(bodies(stack)) >= 3, seconds=10)
    replies = bodies(stack)
    assert replies[0].startswith("Echo: Yo soy cansado")  # (with the checker's correction after it)
    assert len(replies) == 3
    assert "Echo: y tengo hambre" in replies
    assert [r for r in replies if r.startswith("I'm Charla")] == replies[1:2]  # one reply to "help": the command's
    asked = [last_user_text(r) for r in stack.llm.requests["groq"]]
    assert asked == ["Yo soy cansado", "y tengo hambre"]  # the model never saw the command


async def test_a_command_behind_a_deferred_turn_is_answered_and_the_turn_still_is(stack: Stack, db: str) -> None:
    stack.llm.down = {"groq": error("groq_error_503.json"), "anthropic": error("anthropic_error_500.json")}
    await say(stack, "primero")
    await stack.fake.wait_for(1, seconds=10)
    assert bodies(stack)[0].startswith("Give me a moment")
    await say(stack, "help")
    await stack.fake.wait_for(2, seconds=10)
    assert bodies(stack)[1].startswith("I'm Charla")  # the command, while no model can answer
    stack.llm.down = {}
    await stack.fake.wait_until(lambda: "Echo: primero" in bodies(stack), seconds=30)
    assert len(bodies(stack)) == 3  # one delay, the command, the deferred turn's answer
    assert await rows(db, "SELECT status, count(*) FROM messages WHERE direction = 'in' GROUP BY 1") == [
        ("answered", 2)]
    assert await rows(db, "SELECT count(*) FROM pending_turns") == [(0,)]
