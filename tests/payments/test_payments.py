"""Payments and limits: signed Stripe webhooks applied once and in order, the free quota and daily cap
counted atomically, the blocklist, cancel/resume through a fake Stripe API, and the whole paying loop."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
import stripe
from redis.asyncio import Redis

from charla.channels.console import choice_delivery
from charla.core import constants as c
from charla.core.events import Identity
from charla.store import learners
from payments import entitlements
from payments.webhook import parse
from tests.agents.test_conversation import bodies, rows, say
from tests.support.fake_stripe import FakeStripe, body_of, event, serve_fake_stripe, stripe_env, stripe_signature
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually, make_settings
from tests.support.payloads import fixture_bytes, fixture_json

SUB = "sub_1MowQVLkdIwHu7ixeRlqHVzs"


@pytest.mark.parametrize("name", ["stripe_checkout_session_completed.json",
                                  "stripe_checkout_session_completed_subscription.json",
                                  "stripe_customer_subscription_deleted.json"])
def test_the_shared_signature_vectors_verify(name: str) -> None:
    header = fixture_json("stripe_signature_vectors.json")["computed_for_fixture_files"]["files"][name]
    found = parse(fixture_bytes(name), header, "whsec_test_secret", tolerance=None)
    assert found.stripe_id == fixture_json(name)["id"]
    with pytest.raises(stripe.SignatureVerificationError):  # the same bytes, now 3 years late
        parse(fixture_bytes(name), header, "whsec_test_secret")
    with pytest.raises(stripe.SignatureVerificationError):
        parse(fixture_bytes(name) + b" ", header, "whsec_test_secret", tolerance=None)


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    async with serve_fake_stripe() as served:
        yield served


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis,
                fake_stripe: tuple[FakeStripe, str]) -> AsyncIterator[Stack]:
    env = stripe_env(fake_stripe[1], FREE_MESSAGES="2", PAID_DAILY_MESSAGES="3")
    async with running_stack(db, default_redis_server, None, None, **env) as running:
        yield running


async def post_stripe(stack: Stack, payload: dict[str, object], signature: str | None = None) -> int:
    body = body_of(payload)
    response = await stack.http.post("/webhooks/stripe", content=body, headers={
        "stripe-signature": signature or stripe_signature(body), "content-type": "application/json"})
    return response.status_code


async def learner_id(db: str, wa_id: str = "34600000001") -> uuid.UUID:
    (row,) = await rows(db, f"SELECT id FROM learners WHERE wa_id = '{wa_id}'")  # noqa: S608 - test value
    return uuid.UUID(str(row[0]))


async def status_of(db: str) -> list[tuple[object, ...]]:
    return await rows(db, "SELECT status, kind, cancel_at_period_end FROM entitlements")


async def test_free_quota_then_link_then_payment_then_all_set(stack: Stack, db: str, redis_default: Redis) -> None:
    for n, text in enumerate(["Hola", "¿Qué tal?", "Una más"]):
        await say(stack, text)
        await stack.fake.wait_for(n + 1, seconds=10)
    me = await learner_id(db)
    assert bodies(stack)[:2] == ["Echo: Hola", "Echo: ¿Qué tal?"]
    assert bodies(stack)[2] == ("You've used your 2 free messages 🎉 To keep practising with me, subscribe here: "
                                f"https://buy.stripe.com/test_charla?client_reference_id={me.hex}")
    assert stack.llm.calls("groq") == 2  # the over-quota message cost no model call
    changed = redis_default.pubsub()
    await changed.subscribe(c.ENTITLEMENT_CHANNEL)
    paid = event("stripe_checkout_session_completed.json", client_reference_id=me.hex)
    assert await post_stripe(stack, paid) == 200

    async def active() -> bool:
        return await status_of(db) == [("active", "one_off", False)]

    await eventually(active, 10, "the entitlement active")
    note = None
    async with asyncio.timeout(10):
        while note is None:  # get_message waits up to 1 s for the PUBLISH each time
            note = await changed.get_message(ignore_subscribe_messages=True, timeout=1)
    assert note["data"] == str(me).encode()
    await changed.aclose()  # type: ignore[no-untyped-call]
    await say(stack, "¡Ya pagué!")
    await stack.fake.wait_for(4, seconds=10)
    assert bodies(stack)[3] == "You're all set! Thanks for subscribing 🎉\n\nEcho: ¡Ya pagué!"
    await say(stack, "Otra")
    await stack.fake.wait_for(5, seconds=10)
    assert bodies(stack)[4] == "Echo: Otra"  # said once
    assert await rows(db, "SELECT kind, status, amount_cents, currency FROM payments") == [
        ("checkout", "paid", 2198, "usd")]


async def test_paid_daily_cap(stack: Stack, db: str) -> None:
    await say(stack, "Hola")
    await stack.fake.wait_for(1, seconds=10)
    paid = event("stripe_checkout_session_completed.json", client_reference_id=(await learner_id(db)).hex)
    assert await post_stripe(stack, paid) == 200
    await eventually(lambda: _has_status(db, "active"), 10, "active")
    for n in range(4):
        await say(stack, f"mensaje {n}")
        await stack.fake.wait_for(n + 2, seconds=10)
    assert bodies(stack)[-1] == "That's 3 messages today, the daily maximum. Let's continue tomorrow!"


async def _has_status(db: str, status: str) -> bool:
    return [r[0] for r in await status_of(db)] == [status]


async def test_bad_or_stale_signatures_change_nothing(stack: Stack, db: str) -> None:
    paid = event("stripe_checkout_session_completed.json")
    body = body_of(paid)
    assert await post_stripe(stack, paid, signature=stripe_signature(body, secret="whsec_wrong")) == 400
    stale = stripe_signature(body, at=int(datetime.now(UTC).timestamp()) - 301)
    assert await post_stripe(stack, paid, signature=stale) == 400
    name = "stripe_checkout_session_completed.json"
    genuine = fixture_json("stripe_signature_vectors.json")["computed_for_fixture_files"]["files"][name]
    response = await stack.http.post("/webhooks/stripe", content=fixture_bytes(name),
                                     headers={"stripe-signature": genuine})
    assert response.status_code == 400  # a genuine signature, but from 2023
    assert await post_stripe(stack, paid, signature="t=1,v1=nonsense") == 400
    assert await stack.res.redis.xlen(c.STREAM_PAYMENTS) == 0
    assert await rows(db, "SELECT count(*) FROM stripe_events") == [(0,)]


async def test_one_event_replayed_three_times_has_one_effect(stack: Stack, db: str, redis_default: Redis) -> None:
    await say(stack, "Hola", wa_id="16505551234")  # the fixture's phone number: Stripe's second key
    await stack.fake.wait_for(1, seconds=10)
    paid = event("stripe_checkout_session_completed.json")  # client_reference_id "wa_16505551234"
    for _ in range(2):
        assert await post_stripe(stack, paid) == 200
    await eventually(lambda: _has_status(db, "active"), 10, "active")
    await redis_default.delete(*[k async for k in redis_default.scan_iter("charla:dedupe:stripe:*")])
    assert await post_stripe(stack, paid) == 200  # past the edge's memory: the durable record stops it

    async def applied_once() -> bool:
        return await rows(db, "SELECT count(*) FROM payments") == [(1,)] and int(
            (await redis_default.xpending(c.STREAM_PAYMENTS, "payments"))["pending"]) == 0

    await eventually(applied_once, 10, "one payment recorded")
    assert await rows(db, "SELECT count(*), min(state) FROM stripe_events") == [(1, "applied")]


async def test_deleted_before_completed_ends_cancelled(stack: Stack, db: str) -> None:
    await say(stack, "Hola", wa_id="16505551234")
    await stack.fake.wait_for(1, seconds=10)
    assert await post_stripe(stack, event("stripe_customer_subscription_deleted.json")) == 200

    async def parked() -> bool:
        return await rows(db, "SELECT state FROM stripe_events") == [("parked",)]

    await eventually(parked, 10, "the early deletion parked")
    assert await post_stripe(stack, event("stripe_checkout_session_completed_subscription.json")) == 200
    await eventually(lambda: _has_status(db, "cancelled"), 10, "cancelled after all")
    ent = await entitlements.entitlement(stack.res.redis, stack.res.pool, await learner_id(db, "16505551234"))
    assert not ent.premium


async def test_cancel_and_resume_go_through_stripe(stack: Stack, db: str, fake_stripe: tuple[FakeStripe, str]) -> None:
    await say(stack, "Hola", wa_id="16505551234")
    await stack.fake.wait_for(1, seconds=10)
    assert await post_stripe(stack, event("stripe_checkout_session_completed_subscription.json")) == 200
    await eventually(lambda: _has_status(db, "active"), 10, "active")
    await say(stack, "I want to cancel", wa_id="16505551234")
    await stack.fake.wait_for(2, seconds=10)
    question = stack.fake.sent[1]  # asked first: nothing changes until the learner says yes
    assert question["interactive"]["body"]["text"].startswith("Cancel your subscription? It stops renewing")
    assert [b["reply"]["id"] for b in question["interactive"]["action"]["buttons"]] == ["cancel:yes", "cancel:no"]
    assert fake_stripe[0].updates == []
    await say(stack, "yes", wa_id="16505551234")
    await stack.fake.wait_for(3, seconds=10)
    assert bodies(stack, "16505551234")[2] == "Done: your subscription won't renew. You keep premium until 2023-04-23."
    assert fake_stripe[0].updates == [(SUB, {"cancel_at_period_end": "true"})]
    assert await status_of(db) == [("active", "subscription", True)]
    fake_stripe[0].down = True
    await say(stack, "resume my subscription", wa_id="16505551234")  # resuming needs no confirmation
    await stack.fake.wait_for(4, seconds=10)
    assert bodies(stack, "16505551234")[3].startswith("I couldn't reach the payment system")
    assert await status_of(db) == [("active", "subscription", True)]  # nothing changed
    fake_stripe[0].down = False
    await say(stack, "resume my subscription", wa_id="16505551234")
    await stack.fake.wait_for(5, seconds=10)
    assert bodies(stack, "16505551234")[4] == "Your subscription is back on and will renew as usual."
    assert await status_of(db) == [("active", "subscription", False)]


async def test_a_cancel_yes_never_asked_cancels_nothing(stack: Stack, db: str,
                                                        fake_stripe: tuple[FakeStripe, str]) -> None:
    await say(stack, "Hola", wa_id="16505551234")
    await stack.fake.wait_for(1, seconds=10)
    assert await post_stripe(stack, event("stripe_checkout_session_completed_subscription.json")) == 200
    await eventually(lambda: _has_status(db, "active"), 10, "active")
    forged = choice_delivery("16505551234", "cancel:yes", "Yes, cancel it", None, message_id="wamid.forged")
    assert (await stack.post(forged)).status_code == 200
    await stack.fake.wait_for(2, seconds=10)
    assert bodies(stack, "16505551234")[1].startswith("You're all set!")  # tutored as its title's words
    await say(stack, "yes", wa_id="16505551234")  # nor does a "yes" that answers no question
    await stack.fake.wait_for(3, seconds=10)
    assert fake_stripe[0].updates == []
    assert await status_of(db) == [("active", "subscription", False)]


async def test_refund_and_payment_failures(stack: Stack, db: str) -> None:
    await say(stack, "Hola", wa_id="16505551234")
    await stack.fake.wait_for(1, seconds=10)
    assert await post_stripe(stack, event("stripe_checkout_session_completed_subscription.json")) == 200
    await eventually(lambda: _has_status(db, "active"), 10, "active")
    failed = {"id": "evt_failed", "object": "event", "type": "invoice.payment_failed", "created": 1679609800,
              "data": {"object": {"id": "in_1", "object": "invoice", "subscription": SUB}}}
    assert await post_stripe(stack, failed) == 200
    await eventually(lambda: _has_status(db, "past_due"), 10, "past due")
    ent = await entitlements.entitlement(stack.res.redis, stack.res.pool, await learner_id(db, "16505551234"))
    assert ent.premium
    unknown = {"id": "evt_unknown", "object": "event", "type": "customer.created", "created": 1679609801,
               "data": {"object": {"id": "cus_1", "object": "customer"}}}
    assert await post_stripe(stack, unknown) == 200  # acknowledged and logged
    refunded = {"id": "evt_refund", "object": "event", "type": "charge.refunded", "created": 1679609900,
                "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": None, "refunded": True}}}
    async with stack.res.pool.connection() as conn:
        await conn.execute("UPDATE entitlements SET payment_intent = 'pi_sub'")
    refunded["data"]["object"]["payment_intent"] = "pi_sub"  # type: ignore[index]
    assert await post_stripe(stack, refunded) == 200
    await eventually(lambda: _has_status(db, "refunded"), 10, "refunded")
    states = {str(r[0]): str(r[1]) for r in await rows(db, "SELECT id, state FROM stripe_events")}
    assert states["evt_unknown"] == "ignored"


async def test_a_blocked_learner_costs_nothing(stack: Stack, db: str) -> None:
    assert await entitlements.block(stack.res.redis, entitlements.learner_key("+34 600 000 001"))
    await say(stack, "spam spam spam")
    await say(stack, "more spam", wa_id="34600000002")  # someone else, not blocked
    await stack.fake.wait_for(1, seconds=10)
    assert [m["to"] for m in stack.fake.sent] == ["34600000002"]
    assert stack.llm.calls("groq") == 1
    assert await rows(db, "SELECT count(*) FROM learners") == [(1,)]
    assert await entitlements.blocked(stack.res.redis) == ["wa:34600000001"]


async def test_twenty_concurrent_messages_never_exceed_the_quota(stack: Stack, db: str) -> None:
    await asyncio.gather(*(say(stack, f"msg {n}") for n in range(20)))

    async def all_answered() -> bool:
        return await rows(db, "SELECT count(*) FROM messages WHERE direction = 'in' AND status <> 'answered'") == [
            (0,)] and await rows(db, "SELECT count(*) FROM messages WHERE direction = 'in'") == [(20,)]

    await eventually(all_answered, 20, "every message answered")
    free_lines = len(stack.fake.echoed())  # lines the tutor answered (a burst shares a reply)
    assert 0 < len([b for b in bodies(stack) if b.startswith("Echo:")]) <= 2
    assert free_lines <= 20
    assert await rows(db, "SELECT free_used FROM learners") == [(2,)]


async def test_quota_counting_is_atomic_under_concurrency(db: str) -> None:
    settings = make_settings(FREE_MESSAGES="5")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        me = await learners.upsert(conn, Identity(console="racer"))
    now = datetime.now(UTC)

    async def one() -> bool:
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            return (await entitlements.admit(conn, me, False, 1, None, now, settings)).allowed

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert sum(results) == 5


async def test_the_day_ends_at_midnight_in_the_learners_timezone(db: str) -> None:
    settings = make_settings(PAID_DAILY_MESSAGES="2")
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        me = await learners.upsert(conn, Identity(console="kiribati"))
        zone = "Pacific/Kiritimati"  # UTC+14: its day starts at 10:00 UTC the day before

        async def send(at: str) -> bool:
            when = datetime.fromisoformat(at)
            return (await entitlements.admit(conn, me, True, 1, zone, when, settings)).allowed

        assert [await send("2026-03-01T09:58:00+00:00") for _ in range(3)] == [True, True, False]  # 23:58 local
        assert await send("2026-03-01T10:01:00+00:00")  # 00:01 local on the next day: a new day
        assert await rows(db, "SELECT day::text, used FROM daily_usage ORDER BY day") == [
            ("2026-03-01", 2), ("2026-03-02", 1)]
    assert json.dumps(zone)


async def test_erasure_keeps_payment_records_without_personal_data(stack: Stack, db: str) -> None:
    await say(stack, "Hola", wa_id="16505551234")
    await stack.fake.wait_for(1, seconds=10)
    assert await post_stripe(stack, event("stripe_checkout_session_completed.json")) == 200
    await eventually(lambda: _has_status(db, "active"), 10, "active")
    await say(stack, "delete my data", wa_id="16505551234")
    await stack.fake.wait_for(2, seconds=10)
    await say(stack, "yes", wa_id="16505551234")
    await stack.fake.wait_for(3, seconds=10)
    assert await rows(db, "SELECT learner_id, amount_cents FROM payments") == [(None, 2198)]
    (payload,) = await rows(db, "SELECT payload::text FROM stripe_events")
    assert "jenny" not in str(payload[0]).lower()
    assert "16505551234" not in str(payload[0])
    assert await status_of(db) == []


async def test_deleting_my_data_does_not_reset_the_free_quota(stack: Stack, db: str) -> None:
    for n, text in enumerate(["uno", "dos", "delete my data", "yes", "¿Hola otra vez?"]):
        await say(stack, text)
        await stack.fake.wait_for(n + 1, seconds=10)
    assert bodies(stack)[3].startswith("Done: I deleted")
    assert bodies(stack)[4].startswith("You've used your 2 free messages")
    assert stack.llm.calls("groq") == 2
    kept = await rows(db, "SELECT identity_hash, free_used FROM erased_quota")
    assert kept
    assert {row[1] for row in kept} == {2}  # one row per identity the learner had (phone, business-scoped id)
    assert all("34600000001" not in str(row[0]) for row in kept)
