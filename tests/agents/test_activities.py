"""The guided-activity seam (agents/activities.py): a command starts an activity, it claims the learner's next
words and its own taps, other commands still answer while it stays open, its state lives in PostgreSQL and ends
with it, a tap on an activity that has ended is told so, and a roleplay step hands the turn to the tutor with its
brief. Driven through signed webhooks into the running stack, with a two-question toy quiz."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from agents import activities
from charla.channels.console import choice_delivery
from charla.core.events import Choice
from charla.store.turns import Waiting
from charla.tutor import commands
from charla.tutor.activity import Context, State, Step
from tests.agents.test_choices import sent_recorded
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_llm import system_of
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA = "34600000001"
QUESTIONS = ("Capital of Spain?", "Capital of Peru?")


@dataclass
class Quiz:
    """Two questions, answered by tap or typed; "roleplay" in the start command plays a scene instead."""

    kind: str = "quiz"

    async def start(self, ctx: Context, value: str) -> Step:
        if value == "roleplay":
            return Step("Scene: a café.", state={"scene": True}, tutor="You play a waiter in a café.")
        return Step(QUESTIONS[0], [Choice(id="quiz:a", title="Madrid"), Choice(id="quiz:b", title="Lima")],
                    state={"answers": []})

    def claims(self, state: State, row: Waiting) -> bool:
        return row.kind == "text"

    async def answer(self, ctx: Context, state: State) -> Step:
        if state.get("scene"):
            return Step(state={"scene": True}, tutor="You play a waiter in a café.")
        answers = [*state["answers"], ctx.choice or ctx.newest.text or ""]
        if len(answers) < len(QUESTIONS):
            return Step(QUESTIONS[len(answers)], state={"answers": answers})
        return Step(f"Done: {' / '.join(answers)}")


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setitem(activities.REGISTRY, "quiz", Quiz())
    monkeypatch.setattr(commands, "_STARTS", [("quiz", re.compile(r"quiz( (?P<arg>\w+))?"))])
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def turn(stack: Stack, text: str, n: int) -> None:
    await say(stack, text)
    await stack.fake.wait_for(n, seconds=10)


async def tap(stack: Stack, choice: str, title: str, n: int, context: str | None = None) -> None:
    body = choice_delivery(WA, choice, title, context, message_id=f"wamid.q{n}")
    assert (await stack.post(body)).status_code == 200
    await stack.fake.wait_for(n, seconds=10)


async def test_a_quiz_runs_to_its_end_through_taps_typed_answers_and_commands(stack: Stack, db: str) -> None:
    await turn(stack, "quiz", 1)
    assert [b["reply"]["id"] for b in stack.fake.sent[0]["interactive"]["action"]["buttons"]] == ["quiz:a", "quiz:b"]
    assert await rows(db, "SELECT kind, state FROM activities") == [("quiz", {"answers": []})]
    await tap(stack, "quiz:a", "Madrid", 2)
    await turn(stack, "my level is B1", 3)  # a command mid-quiz is answered; the quiz stays open
    assert await rows(db, "SELECT state FROM activities") == [({"answers": ["quiz:a"]},)]
    await turn(stack, "Lima", 4)  # typed words are the quiz's
    assert bodies(stack, WA)[3] == "Done: quiz:a / Lima"
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]
    await eventually(lambda: sent_recorded(db, stack.fake.ids[0]), 10, "the first question's id recorded")
    await tap(stack, "quiz:b", "Lima", 5, context=stack.fake.ids[0])  # offered by it, but the quiz is over
    assert bodies(stack, WA)[4] == "That exercise has already finished. Say *help* to see what we can do next."
    assert stack.llm.calls("groq") == 0  # the whole quiz was answered without a model


async def test_a_roleplay_step_is_a_tutor_turn_with_the_activity_brief(stack: Stack, db: str) -> None:
    await turn(stack, "quiz roleplay", 1)
    assert bodies(stack, WA)[0].startswith("Scene: a café.\n\nEcho: quiz roleplay")
    await turn(stack, "Un café, por favor", 2)
    assert "You play a waiter in a café." in system_of(stack.llm.requests["groq"][-1])
    assert await rows(db, "SELECT state FROM activities") == [({"scene": True},)]
