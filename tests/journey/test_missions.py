"""Roleplay missions through the running stack (signed webhooks in, the real SDKs against the fake LLM, replies
out through the fake Graph API): picked from a list, played in character with the mission's brief, ended by the
learner or by reaching the goal with a debrief, kept in the profile, corrections counted in the error map,
resumable after a gap, and playable offline with the catalog's scripted lines."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.agents.test_activities import tap
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_llm import system_of
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

WA = "34600000001"


def fix(reply: str, original: str, corrected: str, category: str) -> str:
    return json.dumps({"reply": reply, "corrections": [
        {"original": original, "corrected": corrected, "category": category, "explanation": "Short note."}]},
        ensure_ascii=False)


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


@pytest.fixture
async def offline_stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LOCAL_MODEL="on", CHARLA_LLM_CHAIN="local",
                             CHARLA_LLM_HARD_CHAIN="local", CHARLA_OFFLINE_MODEL_S="0") as running:
        yield running


async def turn(stack: Stack, text: str, n: int) -> str:
    await say(stack, text)
    await stack.fake.wait_for(n, seconds=15)
    return bodies(stack, WA)[n - 1]


async def test_a_mission_from_the_list_played_four_turns_then_stopped_gets_its_debrief(stack: Stack, db: str) -> None:
    await turn(stack, "misiones", 1)
    listed = stack.fake.sent[0]["interactive"]
    assert listed["type"] == "list"
    listed_rows = [r for s in listed["action"]["sections"] for r in s["rows"]]
    assert 1 <= len(listed_rows) <= 10
    assert all(r["id"].startswith("mission:") for r in listed_rows)
    assert all(len(r["title"]) <= 24 and len(r["description"]) <= 72 for r in listed_rows)
    await tap(stack, "mission:cafe", "En la cafetería", 2)
    card = bodies(stack, WA)[1]
    assert "*En la cafetería*" in card
    assert "🗣️ ¡Buenos días! ¿Qué le pongo?" in card
    assert stack.llm.calls("groq") == 0  # the list and the card need no model
    stack.llm.script["groq"] = [fix("¡Claro! Un café. ¿Algo más?", "Yo quiero un cafe", "Quiero un café", "accents"),
                                json.dumps({"reply": "Sí, hace calor. ¿Qué le pongo?"}),
                                fix("Muy bien, una tostada.", "un tostada", "una tostada", "gender_agreement")]
    for n, line in enumerate(["Yo quiero un cafe", "Hace calor hoy", "Y un tostada", "Gracias"], start=3):
        await turn(stack, line, n)
    system = system_of(stack.llm.requests["groq"][-1])
    assert "Roleplay mission «En la cafetería»" in system
    assert "You play el camarero" in system
    assert "Still missing: Preguntar cuánto es" in system
    assert "turn 4 of at most 6" in system
    assert await rows(db, "SELECT state->>'turn', state->'met' FROM activities") == [("4", ["drink", "food"])]
    debrief = await turn(stack, "terminar", 7)
    assert debrief.startswith("🏁 *En la cafetería*: mission over. Goal not reached yet")
    assert "✅ Pedir algo de beber\n✅ Pedir algo de comer\n⬜ Preguntar cuánto es" in debrief
    assert "• ~Yo quiero un cafe~ → *Quiero un café*" in debrief
    assert "• ~un tostada~ → *una tostada*" in debrief
    assert "📌 *Useful phrases:*\n• ¿Me pone un café con leche?" in debrief
    score = int(re.findall(r"Score: \*(\d+)/100\*", debrief)[0])
    assert score == round(70 * 2 / 3 + 30 * 2 / 4)  # 2 of 3 criteria; 2 of 4 turns without a correction
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]
    assert stack.llm.calls("groq") == 4  # the stop and its debrief cost no model call
    assert await rows(db, "SELECT data->'missions'->'es/cafe'->>'times', data->'missions'->'es/cafe'->>'last', "
                          "data->'missions'->'es/cafe' ? 'reached' FROM profiles") == [("1", str(score), False)]

    async def counted() -> bool:  # the mission's corrections reached the error map like any turn's
        found = await rows(db, "SELECT data->'errors'->'gender_agreement'->>'count', "
                               "data->'errors'->'accents'->>'count' FROM profiles")
        return found == [("1", "1")]

    await eventually(counted, 10, "the mission's corrections in the error map")


async def test_reaching_the_goal_ends_the_mission_with_the_tutors_last_line_and_the_debrief(
        stack: Stack, db: str) -> None:
    await turn(stack, "missions mercado", 1)
    assert "*Regatear en el mercado*" in bodies(stack, WA)[0]
    lines = ["¿Cuánto cuesta la lámpara?", "Es demasiado cara. ¿Me la deja más barata?", "Le doy 50 euros",
             "Vale, me la llevo"]
    for n, line in enumerate(lines, start=2):
        reply = await turn(stack, line, n)
    assert "This is the last turn of the scene" in system_of(stack.llm.requests["groq"][-1])
    assert reply.startswith("Echo: Vale, me la llevo\n\n🏁 *Regatear en el mercado*: goal reached! 🎉")
    assert "✅ Cerrar el trato" in reply
    assert "⬜" not in reply
    assert "✏️ No corrections this time" in reply
    assert "Score: *100/100*" in reply
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]
    assert await rows(db, "SELECT data->'missions'->'es/mercado' FROM profiles") == [
        ({"times": 1, "best": 100, "last": 100, "reached": True,
          "at": (await rows(db, "SELECT data->'missions'->'es/mercado'->>'at' FROM profiles"))[0][0]},)]


async def test_the_model_judging_the_goal_reached_ends_the_mission(stack: Stack, db: str) -> None:
    await turn(stack, "roleplay hotel", 1)
    stack.llm.script["groq"] = [json.dumps({"reply": "Perfecto, reservado.", "done": True})]
    reply = await turn(stack, "Una doble del 3 al 5 de mayo para Ana López, con desayuno", 2)
    assert reply.startswith("Perfecto, reservado.\n\n🏁 *Reservar un hotel*: goal reached!")
    assert await rows(db, "SELECT data->'missions'->'es/hotel'->>'reached' FROM profiles") == [("true",)]


async def test_after_a_gap_an_open_mission_is_offered_to_resume_or_abandon(stack: Stack, db: str) -> None:
    await turn(stack, "missions cafe", 1)
    await turn(stack, "Un café, por favor", 2)
    await away(stack)
    asked = await turn(stack, "Hola otra vez", 3)
    assert asked.startswith("Welcome back! Your mission *En la cafetería* is still open.")
    assert [b["reply"]["id"] for b in stack.fake.sent[2]["interactive"]["action"]["buttons"]] == [
        "mission:resume", "mission:abandon"]
    calls = stack.llm.calls("groq")
    await tap(stack, "mission:resume", "Carry on", 4)
    assert bodies(stack, WA)[3] == ("🎭 Back to *En la cafetería*. 🎯 Pide algo de beber y algo de comer, y pregunta "
                                    "cuánto es.\n\n🗣️ ¿Quiere algo de comer? Tenemos tostadas, tortilla y cruasanes.")
    assert stack.llm.calls("groq") == calls  # the question and the resume cost no model call
    await turn(stack, "Una tostada", 5)
    assert await rows(db, "SELECT state->>'turn', state->>'asked' FROM activities") == [("2", "false")]
    await away(stack)
    await turn(stack, "Hola", 6)
    await tap(stack, "mission:abandon", "Leave it", 7)
    assert bodies(stack, WA)[6].startswith("Mission closed.")
    assert await rows(db, "SELECT count(*) FROM activities") == [(0,)]


async def test_picking_another_mission_from_the_list_replaces_the_open_one(stack: Stack, db: str) -> None:
    await turn(stack, "missions cafe", 1)
    await turn(stack, "Un café, por favor", 2)
    await turn(stack, "missions", 3)  # the list, with the open mission kept underneath
    assert await rows(db, "SELECT state->>'id', state->>'turn' FROM activities") == [("cafe", "1")]
    await tap(stack, "mission:ropa", "En una tienda de ropa", 4)
    assert "*En una tienda de ropa*" in bodies(stack, WA)[3]
    assert await rows(db, "SELECT state->>'id', state->>'turn' FROM activities") == [("ropa", "0")]


async def away(stack: Stack) -> None:
    """The learner went away for a long while (and Charla restarted meanwhile: the state is in PostgreSQL)."""
    async with stack.res.pool.connection() as conn:
        await conn.execute("""UPDATE activities SET state = jsonb_set(state, '{at}', '"2020-01-01T00:00:00+00:00"')""")


async def test_offline_the_counterpart_speaks_the_catalogs_lines_and_the_checks_decide(offline_stack: Stack,
                                                                                       db: str) -> None:
    stack = offline_stack
    await turn(stack, "missions cafe", 1)
    first = await turn(stack, "Quiero un café con leche", 2)
    assert first.endswith("🗣️ ¿Quiere algo de comer? Tenemos tostadas, tortilla y cruasanes.")
    assert "demo model" in first
    second = await turn(stack, "Una tostada, por favor", 3)
    assert second.endswith("🗣️ ¿Algo más?")
    last = await turn(stack, "¿Cuánto es?", 4)
    assert "🗣️ ¡Aquí tiene! Que aproveche.\n\n🏁 *En la cafetería*: goal reached! 🎉" in last
    assert stack.llm.calls("groq") == 0
    assert await rows(db, "SELECT data->'missions'->'es/cafe'->>'reached' FROM profiles") == [("true",)]


async def test_the_list_leaves_an_open_placement_and_a_tap_starts_the_mission(stack: Stack, db: str) -> None:
    await turn(stack, "test my level", 1)
    (placed,) = await rows(db, "SELECT kind, state->>'current' FROM activities")
    assert placed[0] == "placement"
    await turn(stack, "missions", 2)  # only a look at the list: the placement stays as it was
    assert await rows(db, "SELECT kind, state->>'current' FROM activities") == [placed]
    await tap(stack, "mission:cafe", "En la cafetería", 3)
    assert "*En la cafetería*" in bodies(stack, WA)[2]
    assert await rows(db, "SELECT kind, state->>'id' FROM activities") == [("mission", "cafe")]
