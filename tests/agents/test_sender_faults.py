"""WhatsApp sender faults through the real path (outbox stream → sender agent → Graph client over HTTP → fake
Graph API): throughput and pair rate limits, a 5xx storm, an expired token, and statuses that beat the send.
Assertions are on what the fake Graph received and on the messages table."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from itertools import pairwise
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis

from charla.core import constants as c
from charla.core.events import Identity
from charla.core.runtime import Resources
from charla.ops import deadletters
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually
from tests.support.outbox import interrupted, reply_event
from tests.support.payloads import fixture_json, status_webhook
from tests.support.servers import Answer, Attempt, BeforeAnswer, FakeGraph, serve_fake_graph

pytestmark = pytest.mark.timeout(120)

ANA, BETO, CARMEN, ZOE = "34600000001", "34600000002", "34600000003", "34600000099"
NO_RECALL = "0"  # CHARLA_RECALL_K: these tests queue replies themselves, no embedding model needed


def graph_error(status: int, code: int, title: str) -> Answer:
    """A send error shaped like Meta's (the error object of `wa_errors_event.json` under another code)."""
    error = fixture_json("wa_errors_event.json")["entry"][0]["changes"][0]["value"]["errors"][0]
    return status, {"error": {**error, "code": code, "title": title, "message": title,
                              "error_data": {"details": title}}}


THROTTLED = graph_error(400, 130429, "Rate limit hit")
PAIR_LIMITED = graph_error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit")
STORM = [graph_error(500, 1, "An unknown error has occurred."),
         graph_error(503, 2, "Service temporarily unavailable")]
EXPIRED = (401, fixture_json("wa_send_error_expired_token_190.json"))


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_RECALL_K=NO_RECALL) as running:
        yield running


async def queue(res: Resources, *replies: tuple[str, str]) -> None:
    """Record every (learner, text) reply first, then publish them together, in order."""
    events = [await reply_event(res, Identity(wa_id=wa_id), text) for wa_id, text in replies]
    for event in events:
        await res.bus.publish(c.STREAM_OUTBOX, event)


def refuse(errors: dict[str, list[Answer]]) -> BeforeAnswer:
    """Answer each recipient's scripted errors first, in order; others are never refused."""
    async def answer(body: dict[str, Any], wamid: str) -> Answer | None:
        waiting = errors.get(str(body["to"]))
        return waiting.pop(0) if waiting else None
    return answer


def pair_limit(gap_s: float) -> BeforeAnswer:
    """Meta's pair rate limit: a send to someone who got a message less than `gap_s` ago is refused."""
    last: dict[str, float] = {}

    async def answer(body: dict[str, Any], wamid: str) -> Answer | None:
        to, now = str(body["to"]), time.monotonic()
        if to in last and now - last[to] < gap_s:
            return PAIR_LIMITED
        last[to] = now
        return None
    return answer


def tries(fake: FakeGraph, wa_id: str) -> list[Attempt]:
    return sorted((a for a in fake.log if a.to == wa_id), key=lambda a: a.at)


def bodies(fake: FakeGraph, wa_id: str) -> list[str]:
    return [str(m["text"]["body"]) for m in fake.sent if m["to"] == wa_id]


async def outbound(db: str) -> list[tuple[str, str, str]]:
    """(learner, body, status) of every reply, oldest first."""
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute(
            """SELECT l.wa_id, m.body, m.status FROM messages m JOIN learners l ON l.id = m.learner_id
               WHERE m.direction = 'out' ORDER BY m.id""")).fetchall()
    return [(str(a), str(b), str(s)) for a, b, s in rows]


async def all_sent(db: str) -> bool:
    return all(status == "sent" for _, _, status in await outbound(db))


async def test_throughput_limit_is_retried_with_growing_backoff_while_others_go_out(stack: Stack, db: str) -> None:
    stack.fake.before_answer = refuse({ANA: [THROTTLED] * 3})
    await queue(stack.res, (ANA, "para Ana"), (BETO, "para Beto"), (CARMEN, "para Carmen"))
    await stack.fake.wait_for(3, seconds=30)
    ana = tries(stack.fake, ANA)
    assert [a.status for a in ana] == [400, 400, 400, 200]  # four attempts in all: no hot loop
    # The bus's backoff draws from [0.1, 0.2] × 2^delivery s (capped at the lease): each wait at least doubles.
    waits = [later.at - earlier.at for earlier, later in pairwise(ana)]
    assert all(wait >= least for wait, least in zip(waits, (0.2, 0.4, 0.8), strict=True)), waits
    assert max(a.at for a in stack.fake.log if a.to != ANA) < ana[-1].at  # the others did not wait for Ana
    assert {to: bodies(stack.fake, to) for to in (ANA, BETO, CARMEN)} == {
        ANA: ["para Ana"], BETO: ["para Beto"], CARMEN: ["para Carmen"]}
    await eventually(lambda: all_sent(db), 10, "every reply recorded as sent")


async def test_a_burst_to_one_learner_waits_out_the_pair_limit_in_order(stack: Stack, db: str) -> None:
    stack.fake.before_answer = pair_limit(1.0)
    await queue(stack.res, (ANA, "uno"), (ANA, "dos"), (ANA, "tres"), (BETO, "para Beto"))
    await stack.fake.wait_for(4, seconds=40)
    ana = tries(stack.fake, ANA)
    assert [a.status for a in ana] == [200, 400, 200, 400, 200]  # one refusal per reply, then the wait it asks
    accepted = [a.at for a in ana if a.status == 200]
    assert all(later - earlier >= 6.0 for earlier, later in pairwise(accepted))  # 131056: about 1 per 6 s
    assert bodies(stack.fake, ANA) == ["uno", "dos", "tres"]  # once each, in order
    assert bodies(stack.fake, BETO) == ["para Beto"]
    assert tries(stack.fake, BETO)[0].at < accepted[1]  # Beto did not queue behind Ana's wait
    await eventually(lambda: all_sent(db), 10, "every reply recorded as sent")


async def test_learners_waiting_out_the_pair_limit_do_not_hold_up_anyone_else(stack: Stack, db: str) -> None:
    stack.fake.before_answer = pair_limit(1.0)
    waiting = [f"3461000{n:04d}" for n in range(10)]  # more than the sender's 8 sends at once
    await queue(stack.res, *[(wa_id, text) for wa_id in waiting for text in ("uno", "dos")])

    async def all_slots_waiting() -> bool:  # at least 8 second replies refused and waiting 6 s
        return sum(a.status == 400 for a in stack.fake.log) >= 8

    await eventually(all_slots_waiting, 20, "second replies refused")
    await queue(stack.res, (ZOE, "para Zoe"))
    await stack.fake.wait_until(lambda: bool(bodies(stack.fake, ZOE)), 3)  # long before anyone's 6 s are up
    await stack.fake.wait_for(2 * len(waiting) + 1, seconds=30)
    assert all(bodies(stack.fake, wa_id) == ["uno", "dos"] for wa_id in waiting)
    await eventually(lambda: all_sent(db), 10, "every reply recorded as sent")


async def test_a_5xx_storm_within_the_retry_budget_loses_and_repeats_nothing(
        stack: Stack, db: str, redis_default: Redis) -> None:
    stack.fake.scripted = STORM * 10  # 20 consecutive 500/503, whoever the sends are for
    learners_ = [f"3462000{n:04d}" for n in range(8)]
    await queue(stack.res, *[(wa_id, f"hola {wa_id}") for wa_id in learners_])
    await stack.fake.wait_for(len(learners_), seconds=30)
    assert stack.fake.attempts == 20 + len(learners_)
    assert all(bodies(stack.fake, wa_id) == [f"hola {wa_id}"] for wa_id in learners_)
    assert await redis_default.xlen(c.STREAM_OUTBOX + c.DEAD_SUFFIX) == 0
    await eventually(lambda: all_sent(db), 10, "every reply recorded as sent")


async def test_a_storm_beyond_the_retry_budget_is_dead_lettered_then_replayed_once(
        stack: Stack, db: str, redis_default: Redis) -> None:
    down = [True]

    async def outage(body: dict[str, Any], wamid: str) -> Answer | None:
        return STORM[1] if down[0] else None

    stack.fake.before_answer = outage
    await queue(stack.res, (ANA, "para Ana"), (BETO, "para Beto"))

    async def both_dead() -> bool:
        return len(await deadletters.listing(redis_default, "outbox")) == 2

    await eventually(both_dead, 30, "both replies dead-lettered")
    budget = stack.res.settings.bus_max_deliveries
    letters = await deadletters.listing(redis_default, "outbox")
    assert sorted(letter.learner for letter in letters) == [f"wa:{ANA}", f"wa:{BETO}"]
    assert all(letter.deliveries == budget and "Graph API 503 (code 2)" in letter.error for letter in letters)
    assert stack.fake.attempts == 2 * budget
    assert stack.fake.sent == []
    assert {status for *_, status in await outbound(db)} == {"queued"}  # waiting for an operator, not failed
    down[0] = False  # Graph recovers; the operator replays (`charla deadletters replay`)
    for letter in letters:
        await deadletters.replay(stack.res.bus, letter.dead_id)
    await stack.fake.wait_for(2, seconds=20)
    await eventually(lambda: all_sent(db), 10, "both replies recorded as sent")
    assert (bodies(stack.fake, ANA), bodies(stack.fake, BETO)) == (["para Ana"], ["para Beto"])
    assert await deadletters.listing(redis_default, "outbox") == []


async def test_replies_held_by_an_expired_token_go_out_once_it_is_renewed(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    async with serve_fake_graph() as graph:
        fake = graph[0]

        async def token_check(body: dict[str, Any], wamid: str) -> Answer | None:
            return None if fake.tokens[-1] == "Bearer renewed" else EXPIRED

        fake.before_answer = token_check
        async with running_stack(db, default_redis_server, graph, CHARLA_RECALL_K=NO_RECALL) as stack:
            await queue(stack.res, (ANA, "uno"), (ANA, "dos"), (BETO, "para Beto"), (CARMEN, "para Carmen"))
            await eventually(lambda: redis_default.hget(c.ALERTS_KEY, "190"), 20, "token alert")
            await eventually(lambda: _at_least(fake, 3), 20, "each learner's first reply tried")
        assert fake.sent == []
        assert {status for *_, status in await outbound(db)} == {"queued"}  # waiting, not failed
        # The operator renews WHATSAPP_ACCESS_TOKEN and restarts: the waiting replies go out at once.
        async with running_stack(db, default_redis_server, graph, WHATSAPP_ACCESS_TOKEN="renewed",
                                 CHARLA_RECALL_K=NO_RECALL):
            await fake.wait_for(4, seconds=20)
            await eventually(lambda: all_sent(db), 10, "every reply recorded as sent")
    assert {to: bodies(fake, to) for to in (ANA, BETO, CARMEN)} == {
        ANA: ["uno", "dos"], BETO: ["para Beto"], CARMEN: ["para Carmen"]}
    assert await redis_default.xlen(c.STREAM_OUTBOX + c.DEAD_SUFFIX) == 0


async def _at_least(fake: FakeGraph, attempts: int) -> bool:
    return fake.attempts >= attempts


async def recorded(db: str, wamid: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute("SELECT status FROM message_statuses WHERE provider_message_id = %s",
                                         (wamid,))).fetchall()
    return {str(r[0]) for r in rows}


@pytest.mark.parametrize("tagged", [False, True], ids=["wamid-only", "with-callback-data"])
async def test_statuses_that_beat_the_send_leave_it_read_and_a_late_failure_changes_nothing(
        stack: Stack, db: str, tagged: bool) -> None:
    async def statuses_first(body: dict[str, Any], wamid: str) -> Answer | None:
        tag = str(body["biz_opaque_callback_data"]) if tagged else None
        for status in ("read", "delivered", "sent"):  # newest first: Meta does not promise any order
            assert (await stack.post(status_webhook(wamid, status, str(body["to"]), tag))).status_code == 200

        async def all_recorded() -> bool:
            return await recorded(db, wamid) == {"read", "delivered", "sent"}

        await eventually(all_recorded, 20, "the statuses recorded before the send is answered")
        return None

    stack.fake.before_answer = statuses_first
    await queue(stack.res, (ANA, "hola"))
    await stack.fake.wait_for(1, seconds=20)

    async def is_(status: str) -> bool:
        return await outbound(db) == [(ANA, "hola", status)]

    await eventually(lambda: is_("read"), 20, "the reply read")
    wamid = stack.fake.ids[0]
    assert (await stack.post(status_webhook(wamid, "failed", ANA, None))).status_code == 200

    async def failure_recorded() -> bool:
        return "failed" in await recorded(db, wamid)

    await eventually(failure_recorded, 20, "the late failure recorded")
    assert await is_("read")  # a message the learner read did not fail


async def test_connections_dropped_while_the_provider_accepts_a_reply_never_send_it_twice(
        stack: Stack, db: str) -> None:
    """PostgreSQL drops every connection (as in a restart) between Meta accepting a reply and the sender
    recording it: the sender waits the failure out and records the send instead of having the bus send it
    again."""
    dropped: list[str] = []

    async def drop_connections(body: dict[str, Any], wamid: str) -> Answer | None:
        if not dropped:  # once: the two sends run at once
            dropped.append(wamid)
            async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
                await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return None

    stack.fake.before_answer = drop_connections
    await queue(stack.res, (ANA, "para Ana"), (BETO, "para Beto"))
    await stack.fake.wait_for(2, seconds=30)
    await eventually(lambda: all_sent(db), 30, "both replies recorded as sent")
    assert dropped
    assert {to: bodies(stack.fake, to) for to in (ANA, BETO)} == {ANA: ["para Ana"], BETO: ["para Beto"]}
    assert stack.fake.attempts == 2


@pytest.mark.parametrize("parts", [1, 2], ids=["one-part", "last-of-two"])
async def test_a_send_interrupted_after_meta_accepted_it_is_confirmed_by_its_status_not_repeated(
        stack: Stack, db: str, parts: int) -> None:
    text = "hola " * (1000 * parts - 900)  # 500 characters, or 5,500 (two parts of at most 4,096)
    event = await reply_event(stack.res, Identity(wa_id=ANA), text)
    await interrupted(stack.res, event, parts - 1)
    accepted = f"wamid.accepted.{event.outbound_id}"
    assert (await stack.post(status_webhook(accepted, "delivered", ANA, event.outbound_id))).status_code == 200
    await eventually(lambda: _has(recorded(db, accepted), "delivered"), 20, "Meta's status recorded")
    await stack.res.bus.publish(c.STREAM_OUTBOX, event)

    async def delivered() -> bool:
        return [status for _, _, status in await outbound(db)] == ["delivered"]

    await eventually(delivered, 20, "the reply recorded as sent, and then delivered")
    assert stack.fake.attempts == 0  # nothing sent again
    async with await psycopg.AsyncConnection.connect(db) as conn:
        rows = await (await conn.execute("SELECT part, provider_message_id FROM outbound_parts WHERE outbound_id = %s "
                                         "ORDER BY part", (event.outbound_id,))).fetchall()
    assert rows[-1] == (parts - 1, accepted)
    assert len(rows) == parts


async def _has(statuses: Awaitable[set[str]], status: str) -> bool:
    return status in await statuses


async def test_a_send_interrupted_before_meta_accepted_it_goes_out_once_after_the_wait(
        db: str, default_redis_server: str) -> None:
    async with running_stack(db, default_redis_server, CHARLA_RECALL_K=NO_RECALL,
                             CHARLA_SEND_CONFIRM_S="1.5") as stack:
        event = await reply_event(stack.res, Identity(wa_id=ANA), "hola")
        await interrupted(stack.res, event, 0)
        begun = time.monotonic()
        await stack.res.bus.publish(c.STREAM_OUTBOX, event)
        await stack.fake.wait_for(1, seconds=20)
        assert tries(stack.fake, ANA)[0].at - begun >= 1.0  # Meta's status was waited for first
        await eventually(lambda: all_sent(db), 10, "the reply recorded as sent")
        assert bodies(stack.fake, ANA) == ["hola"]
