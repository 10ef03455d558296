"""Choices are capabilities (issue 18): a button or list id acts only as the answer to the message that
offered it to that learner, and a destructive "yes" only while its question is the latest reply. Anything
else is the text of its title, tutored. Driven through signed webhooks into the running stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import count

import psycopg
import pytest
from redis.asyncio import Redis

from charla.channels.console import choice_delivery
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_llm import last_user_text
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA = "34600000001"
_taps = count()


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def tap(stack: Stack, choice: str, title: str, context: str | None = None) -> None:
    body = choice_delivery(WA, choice, title, context, message_id=f"wamid.tap{next(_taps)}")
    assert (await stack.post(body)).status_code == 200


async def exchange(stack: Stack, text: str) -> str:
    """Say `text`, wait for the answer; returns the provider id of that answer (what a tap's context names)."""
    before = len(stack.fake.sent)
    await say(stack, text)
    await stack.fake.wait_for(before + 1, seconds=10)
    return stack.fake.ids[before]


async def sent_recorded(db: str, wamid: str) -> bool:
    """The sender recorded the provider id of its send (it does so after the Graph API answered)."""
    return bool(await rows(db, f"SELECT 1 FROM outbound_parts WHERE provider_message_id = '{wamid}'"))  # noqa: S608


async def kept(db: str) -> list[tuple[object, ...]]:
    return await rows(db, "SELECT body FROM messages WHERE direction = 'in' ORDER BY id")


async def test_a_forget_yes_never_offered_erases_nothing_and_is_answered_as_text(stack: Stack, db: str) -> None:
    hello = await exchange(stack, "Hola, me llamo Ana")
    await eventually(lambda: sent_recorded(db, hello), 10, "the reply's id recorded")
    await tap(stack, "forget:yes", "Yes, delete it all")  # forged: no question was ever asked
    await stack.fake.wait_for(2, seconds=10)
    await tap(stack, "forget:yes", "Yes, delete it all", context=hello)  # naming a reply that offered nothing
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack, WA)[1:] == ["Echo: Yes, delete it all"] * 2  # tutored as the words of its title
    assert await rows(db, "SELECT count(*) FROM learners") == [(1,)]
    assert await kept(db) == [("Hola, me llamo Ana",), ("Yes, delete it all",), ("Yes, delete it all",)]


async def test_a_forget_yes_offered_before_the_latest_reply_does_nothing(stack: Stack, db: str) -> None:
    question = await exchange(stack, "delete my data")
    assert [b["reply"]["id"] for b in stack.fake.sent[0]["interactive"]["action"]["buttons"]] == [
        "forget:yes", "forget:no"]
    await exchange(stack, "my level is B1")  # another command: the question is no longer the latest reply
    await eventually(lambda: sent_recorded(db, question), 10, "the question's id recorded")
    await tap(stack, "forget:yes", "Yes, delete it all", context=question)
    await stack.fake.wait_for(3, seconds=10)
    await exchange(stack, "yes")  # nor does a typed yes
    assert bodies(stack, WA)[2:] == ["Echo: Yes, delete it all", "Echo: yes"]
    assert await rows(db, "SELECT count(*) FROM learners") == [(1,)]
    assert len(await kept(db)) == 4


async def test_the_offered_forget_yes_erases(stack: Stack, db: str) -> None:
    await exchange(stack, "Hola, me llamo Ana")
    question = await exchange(stack, "delete my data")
    await eventually(lambda: sent_recorded(db, question), 10, "the question's id recorded")
    await tap(stack, "forget:yes", "Yes, delete it all", context=question)
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack, WA)[2].startswith("Done: I deleted")
    assert await kept(db) == [("Yes, delete it all",)]  # a new learner: only this exchange is known


async def test_a_topic_not_offered_is_text_but_one_offered_earlier_acts_on_its_message(stack: Stack, db: str) -> None:
    await tap(stack, "topic:food", "Food")  # never offered
    await stack.fake.wait_for(1, seconds=10)
    assert bodies(stack, WA) == ["Echo: Food"]
    assert "Current topic" not in stack.llm.requests["groq"][0]["messages"][0]["content"]
    listing = await exchange(stack, "topics")
    await exchange(stack, "Hola")  # the list is no longer the latest offer, but its rows still answer it
    await eventually(lambda: sent_recorded(db, listing), 10, "the list's id recorded")
    await tap(stack, "topic:travel", "Travel", context=listing)
    await stack.fake.wait_for(4, seconds=10)
    assert "Current topic: travel." in stack.llm.requests["groq"][-1]["messages"][0]["content"]


async def _prompt(db: str, body: str, *, answered: bool = False, wa_id: str = WA) -> int:
    """A practice prompt the scheduler sent (queued) to learner `wa_id`, answered already or not."""
    async with await psycopg.AsyncConnection.connect(db) as conn:
        row = await (await conn.execute(
            """INSERT INTO practice_prompts (learner_id, kind, slot_at, status, item, body, answered_at)
               SELECT id, 'practice', now(), 'queued', 'word:casa', %s, CASE WHEN %s THEN now() END
               FROM learners WHERE wa_id = %s RETURNING id""", (body, answered, wa_id))).fetchone()
    assert row is not None
    return int(str(row[0]))


async def test_a_practice_button_acts_only_for_this_learners_open_prompt(stack: Stack, db: str) -> None:
    await exchange(stack, "Hola")
    before = len(stack.fake.sent)
    await say(stack, "Hello", wa_id="34600000002")
    await stack.fake.wait_for(before + 1, seconds=10)
    others = await _prompt(db, "Practice: someone else's", wa_id="34600000002")
    done = await _prompt(db, "Practice: already answered", answered=True)
    await tap(stack, f"practice:{others}", "Practice")
    await stack.fake.wait_for(3, seconds=10)
    await tap(stack, f"practice:{done}", "Practice")
    await stack.fake.wait_for(4, seconds=10)
    await tap(stack, "practice:999999", "Practice")
    await stack.fake.wait_for(5, seconds=10)
    assert bodies(stack, WA)[1:] == ["Echo: Practice"] * 3
    assert last_user_text(stack.llm.requests["groq"][-1]) == "Practice"
    mine = await _prompt(db, "Practice: write a sentence using casa")
    await tap(stack, f"practice:{mine}", "Practice")
    await stack.fake.wait_for(6, seconds=10)
    assert bodies(stack, WA)[-1] == "Practice: write a sentence using casa"


async def test_a_question_asked_behind_unanswered_messages_can_still_be_answered(stack: Stack, db: str) -> None:
    release = asyncio.Event()
    stack.llm.hold["Hola"] = release
    await say(stack, "Hola")
    await stack.llm.wait_for("groq", 1, seconds=10)
    await say(stack, "me llamo Ana")
    await say(stack, "delete my data")  # behind "me llamo Ana": the question must stay the latest reply
    release.set()
    await stack.fake.wait_until(lambda: len(bodies(stack, WA)) >= 3, seconds=10)
    assert bodies(stack, WA)[-1].startswith("Delete everything")
    await say(stack, "yes")
    await stack.fake.wait_for(4, seconds=10)
    assert bodies(stack, WA)[3].startswith("Done: I deleted")
