"""The whole path with real processes: signed webhooks → orchestrator → conversation agent → outbox →
sender → fake Graph API, while the answering agent is SIGKILLed or restarted. Nothing may be lost or doubled."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import psycopg
import pytest
from redis.asyncio import Redis

from charla.cli.services import free_port
from charla.core import constants as c
from tests.support.fake_llm import FakeLLM, llm_env, serve_fake_llm
from tests.support.helpers import eventually, hash_of
from tests.support.servers import GRAPH_TOKEN, FakeGraph, serve_fake_graph
from tests.support.stack import Proc, post_conversations, stack_env, wa_id, wait_healthy, wamid

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraph, str]]:
    async with serve_fake_graph() as served:
        yield served


@pytest.fixture
async def llm() -> AsyncIterator[tuple[FakeLLM, str]]:
    async with serve_fake_llm() as served:
        yield served


@pytest.fixture
def env(db: str, default_redis_server: str, graph: tuple[FakeGraph, str], llm: tuple[FakeLLM, str],
        home: Path) -> dict[str, str]:
    """Environment of the stack's processes, on a free port, wired to the fake Graph API and fake LLMs."""
    return stack_env(db=db, redis_url=default_redis_server, graph_url=graph[1], port=free_port(), home=str(home),
                     **llm_env(llm[1]))


def echoed_at_least(fake: FakeGraph, lines: int) -> bool:
    return len(fake.echoed()) >= lines


def base_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['CHARLA_PORT']}"


async def assert_exactly_once(fake: FakeGraph, redis: Redis, db: str, learners: int, per_learner: int) -> None:
    """Every message answered exactly once and in order: a burst may be answered by one reply, so what
    is counted is the learner lines the fake tutor echoed, across all replies."""
    total = learners * per_learner
    await fake.wait_until(lambda: len(fake.echoed()) >= total, seconds=120)

    async def drained() -> bool:
        for stream, group in ((c.STREAM_INBOUND, "conversation"), (c.STREAM_OUTBOX, "sender")):
            if int((await redis.xpending(stream, group))["pending"]):
                return False
        return True

    await eventually(drained, 30, "no pending entries")
    assert len(fake.echoed()) == total, "a message was answered twice"
    replies = Counter(fake.replies_to())
    assert set(replies.values()) == {1}, "a reply was sent twice"
    for i in range(learners):  # each message once, in the order each learner wrote
        assert fake.echoed(wa_id(i)) == [f"L{i} message {n}" for n in range(per_learner)]
    assert await redis.xlen(c.STREAM_INBOUND + c.DEAD_SUFFIX) == 0
    assert await redis.xlen(c.STREAM_OUTBOX + c.DEAD_SUFFIX) == 0
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute(
            "SELECT direction, status, count(*) FROM messages GROUP BY 1, 2 ORDER BY 1, 2")).fetchall()
        turns = await (await conn.execute("SELECT count(*), sum(cardinality(inbound_ids)) FROM turns")).fetchone()
    assert rows == [("in", "answered", total), ("out", "sent", len(fake.sent))]
    assert turns == (len(fake.sent), total)
    assert fake.tokens
    assert set(fake.tokens) == {f"Bearer {GRAPH_TOKEN}"}
    # Read receipts are best effort (a late one is worthless): a killed agent may lose the few in flight.
    read = {r["message_id"] for r in fake.reads}
    assert read <= {wamid(i, n) for i in range(learners) for n in range(per_learner)}
    assert len(read) >= len(fake.sent) - 8 * 4
    assert all(r["typing_indicator"] == {"type": "text"} for r in fake.reads)


async def test_sigkilled_answering_agent_loses_and_doubles_nothing(
        db: str, redis_default: Redis, graph: tuple[FakeGraph, str], env: dict[str, str]) -> None:
    fake = graph[0]
    orchestrator = Proc(["serve"], env)
    conversation = Proc(["agent", "conversation"], {**env, "CHARLA_CONSUMER": "conversation-1"})
    sender = Proc(["agent", "sender"], {**env, "CHARLA_CONSUMER": "sender-1"})
    procs = [orchestrator, conversation, sender]
    for proc in procs:
        await proc.start()
    try:
        await wait_healthy(base_url(env))

        async def kill_three_times() -> None:
            for answered in (150, 450, 750):
                await fake.wait_until(partial(echoed_at_least, fake, answered), seconds=120)
                await conversation.kill()
                await conversation.start()

        killer = asyncio.create_task(kill_three_times())
        await post_conversations(base_url(env), learners=20, per_learner=50)
        await killer
        assert conversation.kills == 3
        await assert_exactly_once(fake, redis_default, db, 20, 50)
    finally:
        for proc in procs:
            await proc.stop()


async def test_charla_restart_and_supervised_crash_lose_nothing(
        db: str, redis_default: Redis, graph: tuple[FakeGraph, str], env: dict[str, str]) -> None:
    fake = graph[0]
    stack = Proc(["up"], env)
    await stack.start()

    async def procs() -> dict[str, dict[str, object]]:
        return {k.decode(): json.loads(v) for k, v in (await hash_of(redis_default, c.PROCS_KEY)).items()}

    async def restarts(name: str) -> int:
        return int(str((await procs()).get(name, {}).get("restarts", 0)))

    async def running_again(name: str, after: int) -> None:
        async def check() -> bool:
            entry = (await procs()).get(name, {})
            return await restarts(name) > after and entry.get("state") == "running"

        await eventually(check, 30, f"{name} running again")

    async def chaos() -> None:
        for answered, name in ((100, "conversation"), (200, "sender")):
            await fake.wait_until(partial(echoed_at_least, fake, answered), seconds=120)
            restart = Proc(["restart", name], env)
            await restart.start()
            assert restart.proc is not None
            assert await restart.proc.wait() == 0
            await running_again(name, 0)
        await fake.wait_until(lambda: len(fake.echoed()) >= 300, seconds=120)
        before = await restarts("conversation")
        os.kill(int(str((await procs())["conversation"]["pid"])), signal.SIGKILL)  # a crash
        await running_again("conversation", before)

    try:
        await wait_healthy(base_url(env))
        chaos_task = asyncio.create_task(chaos())
        await post_conversations(base_url(env), learners=10, per_learner=50)
        await chaos_task
        await assert_exactly_once(fake, redis_default, db, 10, 50)
    finally:
        assert await stack.stop() == 0
    assert await redis_default.hgetall(c.PROCS_KEY) == {}


async def test_console_round_trip_and_status_of_a_running_stack(
        db: str, redis_default: Redis, env: dict[str, str]) -> None:
    env = {**env, "WHATSAPP_PROVIDER": "console"}
    stack = Proc(["up"], env)
    await stack.start()
    try:
        await wait_healthy(base_url(env))
        say = await asyncio.create_subprocess_exec(sys.executable, "-m", "charla", "say", "¿Qué tal?", "--learner",
                                                   "ana", env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await say.communicate()
        assert say.returncode == 0
        assert out.decode().strip() == "Echo: ¿Qué tal?"
        status = await asyncio.create_subprocess_exec(sys.executable, "-m", "charla", "status", env=env,
                                                      stdout=asyncio.subprocess.PIPE)
        report = (await status.communicate())[0].decode()
        for line in ("conversation   running", "sender         running", "orchestrator   running",
                     "conversation-1", "inbound", "memory         running", "turns",
                     "groq           llama-3.3-70b-versatile        closed    1           100%"):
            assert line in report
    finally:
        assert await stack.stop() == 0
