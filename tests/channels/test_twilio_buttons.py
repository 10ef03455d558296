"""Twilio buttons and lists: choices become Content API session content (quick-reply or list-picker, created
once per set of choices through the real SDK against a fake Content API), sent with ContentSid and the body
in ContentVariables; what fits neither, or is refused, goes out as numbered text. Taps come back as choices."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from charla.channels.twilio.content import body_parts, content_types
from charla.channels.twilio.webhook import inbound_message
from charla.core import constants as c
from charla.core.events import Choice, Identity, InboundMessage, OutboundMessage
from charla.core.runtime import Resources
from charla.store import learners, messages, session
from tests.channels.test_twilio import INBOUND, TOKEN, post_form
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually
from tests.support.servers import FakeTwilio, FakeTwilioContent, serve_fake_twilio, serve_fake_twilio_content

LEARNER = "wa:16505551234"
FORGET = "Delete everything I know about you (profile, messages, progress)? This cannot be undone."
GONE = {"code": 21655, "message": "The ContentSid is Invalid", "status": 400, "more_info": ""}


def choices(count: int, title: str = "Option {n}", description: str = "") -> list[Choice]:
    return [Choice(id=f"c{n}", title=title.format(n=n), description=description) for n in range(1, count + 1)]


def test_short_choices_are_quick_replies_with_the_body_as_a_variable() -> None:
    types = content_types(choices(3), "Options", "1. Option 1\n2. Option 2\n3. Option 3")
    assert types == {"twilio/quick-reply": {"body": "{{1}}", "actions": [{"id": f"c{n}", "title": f"Option {n}"}
                                                                         for n in (1, 2, 3)]},
                     "twilio/text": {"body": "{{1}}\n\n1. Option 1\n2. Option 2\n3. Option 3"}}


@pytest.mark.parametrize("offered", [choices(4), choices(2, "A title of 21 letters"), choices(2, description="x"),
                                     choices(10, "Letters: twenty-four {n:03d}")])
def test_more_longer_or_described_choices_are_a_list(offered: list[Choice]) -> None:
    types = content_types(offered, "Topics", "…")
    assert types is not None
    listing = types["twilio/list-picker"]
    assert (listing["body"], listing["button"]) == ("{{1}}", "Topics")
    assert [item["id"] for item in listing["items"]] == [c.id for c in offered]
    assert all(("description" in item) == bool(c.description) for item, c in zip(listing["items"], offered,
                                                                                  strict=True))


@pytest.mark.parametrize("offered", [choices(11), choices(4, "A title of twenty-five ch"),
                                     choices(4, description="d" * 73)])
def test_what_fits_no_list_gets_no_content(offered: list[Choice]) -> None:
    assert content_types(offered, "Topics", "…") is None
    assert content_types(choices(4), "A button text too long", "…") is None


def test_the_variable_is_one_line_of_at_most_1024_characters() -> None:
    assert body_parts("Well done!\n\n*Next*:\tpick   one      below ", 1600) == ["Well done!", "*Next*: pick one below"]
    long = body_parts("intro\n" + "word " * 300, 1600)
    assert long[0] == "intro"
    assert all(len(part) <= 1024 and "\n" not in part for part in long[1:])
    assert body_parts("  \n ", 1600) == []


def test_a_list_selection_is_routed_as_a_choice() -> None:
    picked = inbound_message({**INBOUND, "MessageType": "interactive", "Body": "Food", "ListId": "topic:food",
                              "ListTitle": "Food"})
    tapped = inbound_message({**INBOUND, "MessageType": "button", "Body": "No", "ButtonPayload": "forget:no",
                              "ButtonText": "No, keep it"})
    assert picked is not None
    assert tapped is not None
    assert (picked.kind, picked.text, picked.payload["choice_id"]) == ("interactive", "Food", "topic:food")
    assert (tapped.kind, tapped.text, tapped.payload["choice_id"]) == ("button", "No, keep it", "forget:no")


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]]:
    async with serve_fake_twilio() as (twilio, url), serve_fake_twilio_content() as (content, content_url):
        yield twilio, content, {"TWILIO_API_BASE_URL": url, "TWILIO_CONTENT_BASE_URL": content_url}


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis,
                fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> AsyncIterator[Stack]:
    env = {"WHATSAPP_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
           "TWILIO_AUTH_TOKEN": TOKEN, "CHARLA_PUBLIC_URL": "https://example.com", **fakes[2]}
    async with running_stack(db, default_redis_server, **env) as running:
        yield running


async def say(stack: Stack, n: int, text: str, **fields: str) -> None:
    assert await post_form(stack, {**INBOUND, "MessageSid": f"SMb{n:031d}", "Body": text, **fields}) == 200


async def offer(res: Resources, n: int, text: str, offered: list[Choice]) -> None:
    """Record inbound message `n` and a reply offering `offered`, then hand the reply to the outbox."""
    identity = Identity(wa_id="16505551234", twilio="whatsapp:+16505551234")
    inbound = InboundMessage(learner=LEARNER, provider="twilio", message_id=f"SMo{n}", identity=identity,
                             kind="text", text="?")
    async with res.pool.connection() as conn, conn.transaction():
        learner_id = await learners.upsert(conn, identity, inbound.at)
        inbound_id = await messages.record_inbound(conn, learner_id, inbound)
        reply = await messages.record_reply(conn, learner_id, "twilio", inbound.message_id, inbound_id, text)
    await res.bus.publish(c.STREAM_OUTBOX, OutboundMessage(
        learner=LEARNER, outbound_id=str(reply.outbound_id), provider="twilio", to=identity, kind="choices",
        text=text, choices=offered, via="whatsapp:+14155238886"))


async def test_buttons_are_created_once_then_reused_and_a_tap_answers_them(
        stack: Stack, fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> None:
    twilio, content, _ = fakes
    for n in (1, 2):
        await say(stack, n, "delete my data")
        await twilio.wait_for(n, seconds=20)
    assert content.attempts == 1  # the second offer of the same buttons reuses the SID
    created = content.created[0]
    assert created["types"]["twilio/quick-reply"] == {"body": "{{1}}", "actions": [
        {"id": "forget:yes", "title": "Yes, delete it all"}, {"id": "forget:no", "title": "No, keep it"}]}
    assert (created["language"], created["types"]["twilio/text"]["body"]) == (
        "en", "{{1}}\n\n1. Yes, delete it all\n2. No, keep it")
    first, second = twilio.sent
    assert first["ContentSid"] == second["ContentSid"]
    assert first["ContentSid"].startswith("HX")
    assert len(first["ContentSid"]) == 34
    assert json.loads(first["ContentVariables"]) == {"1": FORGET}
    assert "Body" not in first
    await say(stack, 3, "No", MessageType="button", ButtonPayload="forget:no", ButtonText="No, keep it")
    await twilio.wait_for(3, seconds=20)
    assert twilio.sent[2]["Body"] == "Okay, I kept everything."


async def test_topics_are_a_list_picker_and_a_picked_row_sets_the_topic(
        stack: Stack, fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> None:
    twilio, content, _ = fakes
    await say(stack, 1, "topics")
    await twilio.wait_for(1, seconds=20)
    listing = content.created[0]["types"]["twilio/list-picker"]
    assert listing["button"] == "Options"
    assert [item["id"] for item in listing["items"]][:2] == ["topic:verbs", "topic:food"]
    assert twilio.sent[0]["ContentSid"]
    await say(stack, 2, "Food", MessageType="interactive", ListId="topic:food", ListTitle="Food")
    await twilio.wait_for(2, seconds=20)

    async def topic_set() -> bool:
        return (await session.load(stack.res.redis, LEARNER)).topic == "food"
    await eventually(topic_set, 20, "the picked topic is the session's")


async def test_more_than_ten_choices_are_numbered_text(
        stack: Stack, fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> None:
    twilio, content, _ = fakes
    await offer(stack.res, 1, "Pick one", choices(11))
    await twilio.wait_for(1, seconds=20)
    assert twilio.sent[0]["Body"].startswith("Pick one\n\n1. Option 1\n2. Option 2\n")
    assert "ContentSid" not in twilio.sent[0]
    assert content.attempts == 0


async def test_a_content_api_outage_is_retried(
        stack: Stack, fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> None:
    twilio, content, _ = fakes
    content.scripted = [(500, {"code": 20500, "message": "Internal Server Error", "status": 500})]
    await offer(stack.res, 1, "Ready?", choices(2))
    await twilio.wait_for(1, seconds=20)
    assert (content.attempts, len(content.created)) == (2, 1)
    assert twilio.sent[0]["ContentSid"].startswith("HX")
    assert json.loads(twilio.sent[0]["ContentVariables"]) == {"1": "Ready?"}


async def test_refused_content_falls_back_to_numbered_text(
        stack: Stack, fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> None:
    twilio, content, _ = fakes
    content.scripted = [(400, {"code": 20001, "message": "Invalid types", "status": 400})]
    await offer(stack.res, 1, "Ready?", choices(2))
    await twilio.wait_for(1, seconds=20)
    assert twilio.sent[0]["Body"] == "Ready?\n\n1. Option 1\n2. Option 2"
    assert content.attempts == 1
    await offer(stack.res, 2, "Still ready?", choices(2))  # the same choices again: the refusal is remembered
    await twilio.wait_for(2, seconds=20)
    assert twilio.sent[1]["Body"] == "Still ready?\n\n1. Option 1\n2. Option 2"
    assert content.attempts == 1


async def test_content_deleted_at_twilio_is_created_again(
        stack: Stack, fakes: tuple[FakeTwilio, FakeTwilioContent, dict[str, str]]) -> None:
    twilio, content, _ = fakes
    await offer(stack.res, 1, "Ready?", choices(2))
    await twilio.wait_for(1, seconds=20)
    twilio.scripted = [(400, GONE)]  # someone deleted the content in the console: the cached SID is stale
    await offer(stack.res, 2, "Again?", choices(2))
    await twilio.wait_for(2, seconds=20)
    assert len(content.created) == 2
    assert twilio.sent[1]["ContentSid"] not in ("", twilio.sent[0]["ContentSid"])
    assert json.loads(twilio.sent[1]["ContentVariables"]) == {"1": "Again?"}
