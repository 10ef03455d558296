"""The placement through the running stack (signed webhooks in, the fake Graph API out, the scripted LLM): a
learner who declared C1 takes the test with taps, typed answers and "I don't know", is interrupted (tutored, the
test stays open), resumes by a tap on the open question and by "continue the test", is never asked an item
twice, and ends on B1 stored as the measured level, which the next tutor prompt uses. The one-time offer at
onboarding rides on the first reply and can be skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest
from redis.asyncio import Redis

from charla.channels.console import choice_delivery
from charla.journey import items
from tests.agents.test_choices import sent_recorded
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_llm import system_of
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA = "34600000001"
FREE_ANSWER = ("El sábado pasado fui al mercado con mi hermana. Compramos fruta y pan. Después comimos en casa de "
               "mis padres y vimos una película.")  # 24 words, nothing the checker flags: B1


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


def offered(message: dict[str, Any]) -> list[tuple[str, str]]:
    """The (id, title) choices of a sent interactive message (buttons or list rows)."""
    interactive = message["interactive"]
    if interactive["type"] == "button":
        return [(b["reply"]["id"], b["reply"]["title"]) for b in interactive["action"]["buttons"]]
    return [(r["id"], r["title"]) for r in interactive["action"]["sections"][0]["rows"]]


def item_of(message: dict[str, Any]) -> items.Item:
    item_id = offered(message)[0][0].split(":")[1]
    found = items.catalog("es").item(item_id)
    assert found is not None
    return found


async def turn(stack: Stack, text: str) -> None:
    n = len(stack.fake.sent)
    await say(stack, text)
    await stack.fake.wait_for(n + 1, seconds=20)


async def tap(stack: Stack, choice: str, title: str, context: str | None = None) -> None:
    n = len(stack.fake.sent)
    body = choice_delivery(WA, choice, title, context, row=True, message_id=f"wamid.p{n}")
    assert (await stack.post(body)).status_code == 200
    await stack.fake.wait_for(n + 1, seconds=20)


def answer(item: items.Item, choices: list[tuple[str, str]]) -> tuple[str, str]:
    """A B1 learner: right up to B1, "I don't know" above."""
    if item.level in ("B2", "C1"):
        return choices[-1]
    return choices[item.options.index(item.answer)]


async def test_a_placement_with_i_dont_know_and_an_interruption_ends_on_a_measured_level(stack: Stack,
                                                                                         db: str) -> None:
    await turn(stack, "my level is C1")
    await turn(stack, "test my level")
    assert "10" in bodies(stack, WA)[-1]
    assert "I don't know" in bodies(stack, WA)[-1]
    answered: list[str] = []
    for number in range(1, 10):
        question = stack.fake.sent[-1]
        item = item_of(question)
        assert item.id not in answered
        assert f"*Question {number} of 10*" in bodies(stack, WA)[-1]
        choices = offered(question)
        assert choices[-1] == (f"placement:{item.id}:idk", "I don't know")
        assert len(choices) == len(item.options) + 1
        if number == 3:  # an interruption: tutored, and the question stays open
            calls = stack.llm.calls("groq")
            await turn(stack, "¿Qué significa «cerrado»?")
            assert bodies(stack, WA)[-1].startswith("Echo: ¿Qué significa «cerrado»?")
            assert stack.llm.calls("groq") == calls + 1
            assert await rows(db, "SELECT state->>'current' FROM activities") == [(item.id,)]
            asked_in = stack.fake.ids[len(stack.fake.sent) - 2]  # the open question, answered by a tap on it
            await eventually(partial(sent_recorded, db, asked_in), 10, "the question's id recorded")
            await tap(stack, *answer(item, choices), context=asked_in)
        elif number == 6:
            await turn(stack, "Cuéntame algo")  # tutored again; then resumed in words
            await turn(stack, "continue the test")
            assert bodies(stack, WA)[-1].startswith("Back to your level test")
            assert item_of(stack.fake.sent[-1]) == item
            await turn(stack, "no sé" if item.level in ("B2", "C1") else item.answer)  # typed answers
        else:
            await tap(stack, *answer(item, choices))
        answered.append(item.id)
    assert len(set(answered)) == 9
    assert "Write your answer" in bodies(stack, WA)[-1]
    await turn(stack, FREE_ANSWER)
    done = bodies(stack, WA)[-1]
    assert done.startswith("Your level: *B1*. You got 5 of 9 questions right and wrote 24 words with 0 mistakes")
    assert await rows(db, "SELECT data->>'level_measured', data->>'level' FROM profiles") == [("B1", "C1")]
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]
    await turn(stack, "Hola otra vez")
    assert "their level is B1" in system_of(stack.llm.requests["groq"][-1])  # measured after C1 was declared
    # The activities pitch at it too (tried in the console: the mission list and the drills said A2, the
    # weekly report "Level estimate: –", right after a placement).
    await turn(stack, "misiones")
    assert bodies(stack, WA)[-1].startswith("🎭 *Roleplay missions* for level B1")
    await turn(stack, "dictado")
    assert bodies(stack, WA)[-1].startswith("🎧 *Dictation* (B1)")


async def test_a_tap_on_an_answered_question_asks_the_open_one_again(stack: Stack, db: str) -> None:
    await turn(stack, "hazme una prueba de nivel")
    first = stack.fake.sent[-1]
    await tap(stack, *offered(first)[0])
    second = item_of(stack.fake.sent[-1])
    await eventually(lambda: sent_recorded(db, stack.fake.ids[0]), 10, "the first question's id recorded")
    await tap(stack, *offered(first)[1], context=stack.fake.ids[0])
    assert item_of(stack.fake.sent[-1]) == second
    assert await rows(db, "SELECT jsonb_array_length(state->'asked') FROM activities") == [(1,)]
    await turn(stack, "stop the test")
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]
    assert stack.llm.calls("groq") == 0


async def test_the_offer_rides_on_the_first_reply_once_and_can_be_skipped(db: str, default_redis_server: str,
                                                                         redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, CHARLA_PLACEMENT_OFFER="true") as stack:
        await turn(stack, "Hola")
        first = stack.fake.sent[-1]
        assert first["interactive"]["body"]["text"].startswith("Echo: Hola\n\n_New here?")
        assert offered(first) == [("placement:start", "Test my level"), ("placement:start:later", "Not now")]
        await tap(stack, "placement:start:later", "Not now")
        assert bodies(stack, WA)[-1].startswith("No problem.")
        await turn(stack, "Hola de nuevo")
        assert stack.fake.sent[-1]["type"] == "text"  # offered once
        assert await rows(db, "SELECT data->>'placement_offered' FROM profiles") == [("true",)]
        n = len(stack.fake.sent)
        await say(stack, "Buenos días", wa_id="34600000002")
        await stack.fake.wait_for(n + 1, seconds=20)
        body = choice_delivery("34600000002", "placement:start", "Test my level", None, message_id="wamid.o2")
        assert (await stack.post(body)).status_code == 200
        await stack.fake.wait_for(n + 2, seconds=20)
        assert bodies(stack, "34600000002")[-1].startswith("Let's find your level")
