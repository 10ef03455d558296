"""Learner memory: pgvector recall (exactly k, per learner only, good enough on a seeded set), the memory
agent's summaries and facts, and memory surviving the session."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from redis.asyncio import Redis

from charla.cli.services import free_port
from charla.core import constants as c
from charla.core.db import open_pool
from charla.core.events import Identity, TurnEvent
from charla.store import learners, memories, profile
from charla.store.profile import Profile
from charla.tutor import insights
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_llm import FakeLLM, serve_fake_llm
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually
from tests.support.recall_set import MEMORIES, QUERIES
from tests.support.stack import Proc, stack_env

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def embedder() -> memories.Embedder:
    return memories.Embedder()


async def new_learner(db: str, name: str) -> uuid.UUID:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        return await learners.upsert(conn, Identity(console=name))


def unit(rng: np.random.Generator) -> np.ndarray[Any, np.dtype[np.float32]]:
    v = rng.standard_normal(memories.DIM).astype(np.float32)
    return v / np.linalg.norm(v)


async def test_a_learner_with_k_or_more_memories_gets_exactly_k(db: str) -> None:
    rng = np.random.default_rng(7)
    ana, beto = await new_learner(db, "ana"), await new_learner(db, "beto")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        assert not await memories.exist(conn, ana)  # a new learner: recall costs no embedding
        for n in range(40):
            await memories.add(conn, ana, "moment", f"ana {n}", unit(rng), [f"m{n}"])
        assert await memories.exist(conn, ana)
        for n in range(400):  # many more rows of someone else: a filtered approximate index would starve ana
            await memories.add(conn, beto, "moment", f"beto {n}", unit(rng), [])
        for k in (1, 5, 20, 40):
            assert len(await memories.search(conn, ana, unit(rng), k)) == k
        assert len(await memories.search(conn, ana, unit(rng), 100)) == 40
        indexes = await (await conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'memories'")).fetchall()
    assert not any("hnsw" in str(i[0]).lower() or "ivfflat" in str(i[0]).lower() for i in indexes)


async def test_memories_are_capped_per_learner_oldest_first(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memories, "MAX_PER_LEARNER", 10)
    rng = np.random.default_rng(1)
    ana = await new_learner(db, "ana")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        for n in range(15):
            await memories.add(conn, ana, "moment", f"memory {n}", unit(rng), [])
        kept = await (await conn.execute("SELECT content FROM memories ORDER BY id")).fetchall()
    assert [k[0] for k in kept] == [f"memory {n}" for n in range(5, 15)]


async def test_near_identical_memories_never_cross_learners(db: str, embedder: memories.Embedder) -> None:
    ana, beto = await new_learner(db, "ana"), await new_learner(db, "beto")
    texts = {ana: "My cat is called Luna and I love paella", beto: "My cat is called Luna and I love paella!"}
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        for who, text in texts.items():
            await memories.add(conn, who, "moment", text, (await embedder.passages([text]))[0], [str(who)])
        query = await embedder.query("What is my cat called?")
        for who, text in texts.items():
            found = await memories.search(conn, who, query, 5)
            assert [(m.content, m.source_message_ids) for m in found] == [(text, [str(who)])]


async def test_recall_at_5_on_the_seeded_set(db: str, embedder: memories.Embedder) -> None:
    ana, other = await new_learner(db, "ana"), await new_learner(db, "other")
    keys = list(MEMORIES)
    vectors = await embedder.passages([MEMORIES[k] for k in keys])
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        for key, vector in zip(keys, vectors, strict=True):
            await memories.add(conn, ana, "moment", key, vector, [])
            await memories.add(conn, other, "moment", "other:" + key, vector, [])  # same texts, someone else
        hits = 0
        for question, wanted in QUERIES:
            found = await memories.search(conn, ana, await embedder.query(question), 5)
            assert all(not m.content.startswith("other:") for m in found)
            hits += wanted in [m.content for m in found]
    recall = hits / len(QUERIES)
    print(f"recall@5 = {recall:.3f} over {len(QUERIES)} questions (English and Spanish)")
    assert recall >= 0.9


def test_facts_echoing_a_system_prompt_are_not_stored() -> None:
    p = Profile(goals=["B2 by summer"])
    learned = insights.Learned(
        name="Ana",
        goals=["B1 before a June trip to Mexico", "Reply in Spanish at their level", "Follow the system prompt"],
        summary="Practised ser and estar.", moments=["You are Charla, a tutor", "Learnt 'fianza'"])
    rules = "Reply in Spanish at their level: 1-3 short sentences"
    insights.merge(p, learned, ["wamid.1", "wamid.2"], [rules])
    assert (p.name, p.goals) == ("Ana", ["B1 before a June trip to Mexico"])  # the newer goal replaced the old
    assert p.provenance["goals"].message_ids == ["wamid.2"]
    assert insights.memories_of(learned, [rules]) == [("summary", "Practised ser and estar."),
                                                       ("moment", "Learnt 'fianza'")]


SER_ESTAR = json.dumps({"reply": "¡Ánimo!", "confidence": 0.9, "corrections": [
    {"original": "Yo es cansada", "corrected": "Estoy cansada", "category": "ser_estar",
     "explanation": "estar for states"}]})


def fixed(original: str, corrected: str) -> str:
    """A model's answer with one ser/estar correction."""
    return json.dumps({"reply": "¡Ánimo!", "confidence": 0.9, "corrections": [
        {"original": original, "corrected": corrected, "category": "ser_estar", "explanation": "estar for states"}]})


LEARNED = json.dumps({"name": "Ana", "level_inferred": "A2", "goals": ["B1 before a June trip to Mexico"],
                      "topics": ["travel"], "summary": "Ana introduced herself and practised ser vs estar.",
                      "moments": ["Ana wants B1 before her June trip to Mexico."]})


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_MEMORY_EVERY="4") as running:
        yield running


async def test_day_zero_facts_are_used_fourteen_days_later(stack: Stack, db: str, redis_default: Redis) -> None:
    # Each correction as a good model makes it (one the checker contradicts would get a second opinion).
    stack.llm.script["groq"] = ["{\"reply\": \"¡Hola Ana!\"}", SER_ESTAR, fixed("es cansada", "está cansada"),
                                fixed("Nosotros es cansados", "Nosotros estamos cansados")]
    stack.llm.script["anthropic"] = [LEARNED]
    for n, text in enumerate(["Hola, me llamo Ana. Quiero llegar a B1 antes de mi viaje a México en junio.",
                              "Yo es cansada hoy", "Mi madre es cansada también", "Nosotros es cansados"]):
        await say(stack, text)
        await stack.fake.wait_for(n + 1, seconds=10)

    async def remembered() -> bool:
        found = await rows(db, "SELECT data->>'name', data->'errors'->'ser_estar'->>'count' FROM profiles")
        return found == [("Ana", "3")] and await rows(db, "SELECT count(*) FROM memories") == [(2,)]

    await eventually(remembered, 20, "the profile and memories written")
    # Fourteen days later: the session has expired; memories and turns are two weeks old.
    await redis_default.delete(c.SESSION_KEY.format(learner="wa:34600000001"))
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute("UPDATE memories SET created_at = created_at - interval '14 days'")
    await say(stack, "¡Hola de nuevo!")
    await stack.fake.wait_for(5, seconds=10)
    system = stack.llm.requests["groq"][-1]["messages"][0]["content"]
    for fact in ("name Ana", "B1 before a June trip to Mexico", "ser vs estar (3×)",
                 "Ana wants B1 before her June trip to Mexico."):
        assert fact in system
    (summary_request,) = stack.llm.requests["anthropic"]
    assert "Yo es cansada hoy" in summary_request["messages"][0]["content"]
    assert "You are Charla" not in summary_request["messages"][0]["content"]  # the tutor's rules never go in


async def test_send_me_my_data_is_readable(stack: Stack) -> None:
    await say(stack, "my level is B1")
    await stack.fake.wait_for(1, seconds=10)
    await say(stack, "send me my data")
    await stack.fake.wait_for(2, seconds=10)
    text = bodies(stack)[1]
    assert text.startswith("*Your data at Charla*")
    assert "• Level: B1" in text
    assert "Say *delete my data* to erase all of it." in text


async def test_killed_memory_agent_loses_and_double_counts_nothing(db: str, default_redis_server: str,
                                                                   redis_default: Redis, home: Path) -> None:
    ids = [await new_learner(db, f"l{i}") for i in range(6)]
    per_learner = 40
    for n in range(per_learner):
        for i, learner_id in enumerate(ids):
            turn = TurnEvent(learner=f"console:l{i}", turn_id=n * 10 + i + 1, learner_id=str(learner_id),
                             message_ids=[f"m{i}-{n}"], text="Yo es cansado", reply="Estoy cansado",
                             corrections=[{"original": "Yo es cansado", "corrected": "Estoy cansado",
                                           "category": "ser_estar"}],
                             vocabulary=[{"word": f"palabra{n}", "translation": "word"}], llm="groq")
            from charla.core.bus import Bus

            await Bus(redis_default).publish(c.STREAM_TURNS, turn)
    env = stack_env(db=db, redis_url=default_redis_server, graph_url="http://127.0.0.1:9", port=free_port(),
                    home=str(home), CHARLA_LOCAL_MODEL="off", CHARLA_CONSUMER="memory-1")
    agent = Proc(["agent", "memory"], env)
    pool = await open_pool(db)

    async def counted() -> int:
        async with pool.connection() as conn:
            found = [await profile.load(conn, learner_id) for learner_id in ids]
        return sum(p.errors["ser_estar"].count for p in found if "ser_estar" in p.errors)

    try:
        for threshold in (30, 90, 160):
            await agent.start()
            await eventually(partial(_at_least, counted, threshold), 60, f"{threshold} turns counted")
            await agent.kill()
        await agent.start()
        await eventually(partial(_at_least, counted, per_learner * len(ids)), 60, "every turn counted")

        async def drained() -> bool:
            return int((await redis_default.xpending(c.STREAM_TURNS, "memory"))["pending"]) == 0

        await eventually(drained, 30, "nothing pending")
        assert await counted() == per_learner * len(ids)  # once each
        async with pool.connection() as conn:
            for learner_id in ids:
                p = await profile.load(conn, learner_id)
                assert p.errors["ser_estar"].count == per_learner
                assert len(p.vocabulary) == per_learner
        assert await redis_default.xlen(c.STREAM_TURNS + c.DEAD_SUFFIX) == 0
    finally:
        await agent.stop()
        await pool.close()


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


async def test_fake_llm_summaries_are_valid_for_the_memory_agent() -> None:
    async with serve_fake_llm(FakeLLM()) as (fake, _):
        reply = fake.replier("anthropic", {"system": insights.SYSTEM, "messages": [
            {"role": "user", "content": "Conversation:\nLearner: hola"}]})
    assert insights.Learned.model_validate_json(reply).summary.startswith("Practised:")
    await asyncio.sleep(0)
