"""WhatsApp lifecycle events (issue 25), data-driven over payloads of each kind written from Meta's documented
shapes (tests/support/lifecycle_payloads.py), for phone-number and business-scoped identities: which are
answered, which are silent, and what state each leaves."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from charla.channels.meta import webhook as meta
from charla.core import alerts
from charla.core.events import Identity
from charla.core.keys import server_key
from charla.ops import status
from charla.store import learners, profile
from charla.store.profile import ErrorStat, Example
from charla.tutor import practice
from tests.agents.test_conversation import rows
from tests.orchestrator.test_console_admin import TOKEN
from tests.support import lifecycle_payloads as p
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually

CANNOT = ("I can read text messages and listen to voice notes, but messages like that are something I can't use "
          "yet. Write to me and I'll help!")
OPTED_OUT = ("Done: no more practice reminders or announcements from me. I still answer whenever you write; send "
             "*START* to turn them back on.")
CALLS = ("I can read text messages and listen to voice notes, but calls are something I can't use yet. Write to me "
         "and I'll help!")
OPTED_IN = "Practice reminders and announcements are back on. Send *STOP* any time to pause them."
_ids = itertools.count()


def wamid() -> str:
    return f"wamid.life{next(_ids)}"


# ---- the parser: what each payload means -------------------------------------------------------------------

def parsed(payload: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {"inbound": [(m.learner, m.kind, m.text) for m in meta.inbound_messages(payload)],
            "notices": [(n.learner, n.notice, n.identity.key(), n.new_identity.key() if n.new_identity else None)
                        for n in meta.system_notices(payload)],
            "preferences": [(u.learner, u.value) for u in meta.preferences(payload)],
            "platform": [(n.topic, n.event, n.template) for n in meta.platform_notices(payload)],
            "calls": [(m.learner, m.kind) for m in meta.calls(payload)]}


PARSED: list[tuple[str, Any, dict[str, list[tuple[Any, ...]]]]] = [
    ("changed number", p.changed_number("16505551234", "12195555358", "wamid.s1"),
     {"notices": [("wa:12195555358", "user_changed_number", "wa:16505551234", "wa:12195555358")]}),
    ("changed number, v11 new_wa_id", p.changed_number("16505551234", "12195555358", "wamid.s2", legacy=True),
     {"notices": [("wa:12195555358", "user_changed_number", "wa:16505551234", "wa:12195555358")]}),
    ("changed number with user ids", p.changed_number("16505551234", "12195555358", "wamid.s3",
                                                      previous_user_id="US.old", user_id="US.new"),
     {"notices": [("wa:12195555358", "user_changed_number", "wa:16505551234", "wa:12195555358")]}),
    ("changed user id", p.changed_user_id("US.old", "US.new", "wamid.s4"),
     {"notices": [("bsuid:US.new", "user_changed_user_id", "bsuid:US.old", "bsuid:US.new")]}),
    ("identity changed, wa_id", p.identity_changed("16505551234", None, "wamid.s5"),
     {"notices": [("wa:16505551234", "customer_identity_changed", "wa:16505551234", None)]}),
    ("identity changed, user_id", p.identity_changed(None, "US.abc", "wamid.s6"),
     {"notices": [("bsuid:US.abc", "customer_identity_changed", "bsuid:US.abc", None)]}),
    ("unsupported, wa_id", p.unsupported("16505551234", None, "wamid.u1"),
     {"inbound": [("wa:16505551234", "unsupported", None)]}),
    ("unsupported, user_id", p.unsupported(None, "US.abc", "wamid.u2"),
     {"inbound": [("bsuid:US.abc", "unsupported", None)]}),
    ("interactive with an error", p.unreadable_interactive("16505551234", None, "wamid.u3"),
     {"inbound": [("wa:16505551234", "unsupported", None)]}),
    ("text with errors", p.message("16505551234", None, "wamid.u4", "text", text={"body": "x"},
                                   errors=[{"code": 131051}]),
     {"inbound": [("wa:16505551234", "unsupported", None)]}),
    ("edit, wa_id", p.edit("16505551234", None, "wamid.e1", "wamid.o1", "I am tired"),
     {"inbound": [("wa:16505551234", "edit", "I am tired")]}),
    ("revoke, user_id", p.revoke(None, "US.abc", "wamid.r1", "wamid.o1"),
     {"inbound": [("bsuid:US.abc", "revoke", None)]}),
    ("template rejected", p.template_status("charla_practice", "es", "REJECTED"), {"platform": [
        ("message_template_status_update", "REJECTED", "charla_practice")]}),
    ("template quality", p.template_quality("t", "en_US", "RED"), {"platform": [
        ("message_template_quality_update", "RED", "t")]}),
    ("template category", p.template_category("t", "en_US", "MARKETING"), {"platform": [
        ("template_category_update", "MARKETING", "t")]}),
    ("account restricted", p.account_update("ACCOUNT_RESTRICTION"), {"platform": [
        ("account_update", "ACCOUNT_RESTRICTION", None)]}),
    ("call, wa_id", p.call("16505551234", None, "wacid.c1"), {"calls": [("wa:16505551234", "call")]}),
    ("call, user_id", p.call(None, "US.abc", "wacid.c2"), {"calls": [("bsuid:US.abc", "call")]}),
    ("call ended", p.call("16505551234", None, "wacid.c3", event="terminate"), {}),
    ("call by the business", p.call("16505551234", None, "wacid.c4", direction="BUSINESS_INITIATED"), {}),
    ("stop, wa_id", p.marketing_preference("16505551234", None, "stop"), {"preferences": [("wa:16505551234", "stop")]}),
    ("resume, user_id", p.marketing_preference(None, "US.abc", "resume"),
     {"preferences": [("bsuid:US.abc", "resume")]}),
    ("stop, both ids", p.marketing_preference("16505551234", "US.abc", "stop"),
     {"preferences": [("wa:16505551234", "stop")]}),
]


@pytest.mark.parametrize(("name", "payload", "expected"), PARSED, ids=[case[0] for case in PARSED])
def test_each_lifecycle_payload_parses_as_what_it_is(name: str, payload: Any,
                                                     expected: dict[str, list[tuple[Any, ...]]]) -> None:
    assert parsed(payload) == {"inbound": [], "notices": [], "preferences": [], "platform": [], "calls": [],
                               **expected}


def test_the_notice_keeps_both_old_ids_and_the_new_ones() -> None:
    (notice,) = meta.system_notices(p.changed_number("16505551234", "12195555358", "wamid.s7",
                                                     previous_user_id="US.old", user_id="US.new"))
    assert notice.identity == Identity(wa_id="16505551234", user_id="US.old")
    assert notice.new_identity == Identity(wa_id="12195555358", user_id="US.new")


# ---- through the whole stack: answered or silent, and the state left ---------------------------------------

@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server) as running:
        yield running


async def post(stack: Stack, payload: Any) -> None:
    assert (await stack.post(json.dumps(payload).encode())).status_code == 200


def sent_to(stack: Stack, to: str) -> list[str]:
    return [str(m.get("text", {}).get("body") or m.get("type")) for m in stack.fake.sent if m["to"] == to]


@dataclass(frozen=True)
class Case:
    name: str
    wa_id: str | None
    user_id: str | None
    payload: Callable[[str | None, str | None], Any]
    reply: str | None  # None: silent
    state: str  # a query over the learner's rows
    expected: list[tuple[Any, ...]]
    to: str | None = None  # where replies go after the event (default: the learner's own id)


def _text(words: str) -> Callable[[str | None, str | None], Any]:
    return lambda wa, user: p.text(wa, user, wamid(), words)


NEW = "12195555358"
EVENTS = "SELECT kind, detail->>'source' FROM learner_events ORDER BY id"
CASES = [
    Case("number change", "16505550001", None, lambda wa, _: p.changed_number(str(wa), NEW, wamid()), None,
         "SELECT wa_id, (SELECT array_agg(value) FROM learner_aliases), (SELECT count(*) FROM learners) FROM learners",
         [(NEW, ["16505550001"], 1)], to=NEW),
    Case("user id change", None, "US.old", lambda _, user: p.changed_user_id(str(user), "US.new", wamid()), None,
         "SELECT wa_user_id, (SELECT array_agg(value) FROM learner_aliases) FROM learners",
         [("US.new", ["US.old"])], to="US.new"),
    Case("identity change, wa_id", "16505550002", None, lambda wa, u: p.identity_changed(wa, u, wamid()), None,
         "SELECT kind, detail->>'notice' FROM learner_events", [("identity_changed", "customer_identity_changed")]),
    Case("identity change, user_id", None, "US.idc", lambda wa, u: p.identity_changed(wa, u, wamid()), None,
         "SELECT kind, detail->>'notice' FROM learner_events", [("identity_changed", "customer_identity_changed")]),
    Case("unsupported, wa_id", "16505550003", None, lambda wa, u: p.unsupported(wa, u, wamid()), CANNOT,
         "SELECT kind, status FROM messages WHERE direction = 'in' ORDER BY id OFFSET 1 LIMIT 1",
         [("unsupported", "answered")]),
    Case("unsupported, user_id", None, "US.uns", lambda wa, u: p.unsupported(wa, u, wamid()), CANNOT,
         "SELECT kind, status FROM messages WHERE direction = 'in' ORDER BY id OFFSET 1 LIMIT 1",
         [("unsupported", "answered")]),
    Case("unreadable interactive", "16505550004", None, lambda wa, u: p.unreadable_interactive(wa, u, wamid()),
         CANNOT, "SELECT kind, status FROM messages WHERE direction = 'in' ORDER BY id OFFSET 1 LIMIT 1",
         [("unsupported", "answered")]),
    Case("a call, window open", "16505550008", None, lambda wa, u: p.call(wa, u, f"wacid.{wamid()}"), CALLS,
         "SELECT kind, status FROM messages WHERE direction = 'in' ORDER BY id OFFSET 1 LIMIT 1",
         [("call", "answered")]),
    Case("a call, user_id", None, "US.call", lambda wa, u: p.call(wa, u, f"wacid.{wamid()}"), CALLS,
         "SELECT kind, status FROM messages WHERE direction = 'in' ORDER BY id OFFSET 1 LIMIT 1",
         [("call", "answered")]),
    Case("marketing stop, wa_id", "16505550005", None, lambda wa, u: p.marketing_preference(wa, u, "stop"), None,
         EVENTS, [("opted_out", "whatsapp:marketing_messages")]),
    Case("marketing stop, user_id", None, "US.stop", lambda wa, u: p.marketing_preference(wa, u, "stop"), None,
         EVENTS, [("opted_out", "whatsapp:marketing_messages")]),
    Case("STOP in the chat", "16505550006", None, _text("STOP"), OPTED_OUT, EVENTS, [("opted_out", "chat")]),
    Case("BAJA in the chat, user_id", None, "US.baja", _text("Baja"), OPTED_OUT, EVENTS, [("opted_out", "chat")]),
    Case("PARAR in the chat", "16505550007", None, _text("parar"), OPTED_OUT, EVENTS, [("opted_out", "chat")]),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_each_lifecycle_event_is_answered_or_silent_and_leaves_its_state(stack: Stack, db: str,
                                                                               case: Case) -> None:
    me = case.wa_id or case.user_id
    assert me is not None
    await post(stack, p.text(case.wa_id, case.user_id, wamid(), "hola"))  # a learner with a history
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, case.payload(case.wa_id, case.user_id))
    if case.reply is not None:
        await stack.fake.wait_for(2, seconds=15)
        assert sent_to(stack, me)[1] == case.reply
    await eventually(lambda: _state_is(db, case), 15, case.state)
    to = case.to or me
    then = Identity(wa_id=to) if to.isdigit() else Identity(user_id=to)
    await post(stack, p.text(then.wa_id, then.user_id, wamid(), "sigo aquí"))  # comes after the event, in order
    await stack.fake.wait_for(3 if case.reply else 2, seconds=15)
    assert len(stack.fake.sent) == (3 if case.reply else 2)  # a silent event sent nothing
    assert sent_to(stack, to)[-1] == "Echo: sigo aquí"


async def _state_is(db: str, case: Case) -> bool:
    return await rows(db, case.state) == case.expected


async def test_stop_then_start_is_reversible_and_confirmed(stack: Stack, db: str) -> None:
    for n, (words, reply) in enumerate([("STOP", OPTED_OUT), ("reanudar", OPTED_IN)]):
        await post(stack, p.text("16505550010", None, wamid(), words))
        await stack.fake.wait_for(n + 1, seconds=15)
        assert sent_to(stack, "16505550010")[n] == reply
    assert await rows(db, "SELECT opted_out_at FROM learners") == [(None,)]
    assert await rows(db, EVENTS) == [("opted_out", "chat"), ("opted_in", "chat")]


async def test_a_call_outside_the_window_gets_nothing_and_opens_no_window(stack: Stack, db: str) -> None:
    await post(stack, p.call("16505550013", None, "wacid.quiet"))  # never wrote: no window
    await eventually(lambda: _call_noted(db), 15, "the call recorded")
    await post(stack, p.text("16505550013", None, wamid(), "hola"))
    await stack.fake.wait_for(1, seconds=15)
    assert sent_to(stack, "16505550013") == ["Echo: hola"]


async def _call_noted(db: str) -> bool:
    return await rows(db, "SELECT kind, status, l.last_inbound_at FROM messages m JOIN learners l "
                          "ON l.id = m.learner_id") == [("call", "noted", None)]


async def test_start_from_someone_who_never_stopped_is_a_greeting(stack: Stack, db: str) -> None:
    await post(stack, p.text("16505550012", None, wamid(), "start"))
    await stack.fake.wait_for(1, seconds=15)
    assert sent_to(stack, "16505550012") == ["Echo: start"]
    assert await rows(db, EVENTS) == []


async def test_whatsapp_resume_allows_practice_again(stack: Stack, db: str) -> None:
    await post(stack, p.text(None, "US.r", wamid(), "hola"))
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.marketing_preference(None, "US.r", "stop"))
    await eventually(lambda: _opted_out(db, True), 15, "opted out")
    await post(stack, p.marketing_preference(None, "US.r", "resume"))
    await eventually(lambda: _opted_out(db, False), 15, "opted in again")


async def _opted_out(db: str, out: bool) -> bool:
    return await rows(db, "SELECT opted_out_at IS NOT NULL FROM learners") == [(out,)]


async def test_nothing_proactive_goes_to_an_opted_out_learner_but_replies_do(stack: Stack, db: str) -> None:
    await post(stack, p.text("16505550011", None, wamid(), "STOP"))
    await stack.fake.wait_for(1, seconds=15)
    (me,) = await rows(db, "SELECT id FROM learners")
    async with stack.res.pool.connection() as conn:
        await practice.set_schedule(conn, me[0], "19:00", list(range(7)), "Europe/Madrid",  # type: ignore[arg-type]
                                    datetime.now(UTC))
        await conn.execute("UPDATE schedules SET next_run_at = now()")  # due now: the stack's scheduler takes it
    await eventually(lambda: _skipped(db), 15, "practice skipped")
    await post(stack, p.text("16505550011", None, wamid(), "hola"))
    await stack.fake.wait_for(2, seconds=15)
    assert sent_to(stack, "16505550011") == [OPTED_OUT, "Echo: hola"]


async def _skipped(db: str) -> bool:
    return await rows(db, "SELECT status, reason FROM practice_prompts") == [("skipped", "learner opted out")]


# ---- the number change, end to end ------------------------------------------------------------------------

OLD = "34600111222"


async def test_a_number_change_keeps_the_learner_and_practice_follows_the_new_number(stack: Stack, db: str) -> None:
    await post(stack, p.text(OLD, None, wamid(), "hola"))
    await stack.fake.wait_for(1, seconds=15)
    ((me,),) = await rows(db, "SELECT id FROM learners")
    async with stack.res.pool.connection() as conn:
        await profile.update(conn, me, _b1_with_errors)  # type: ignore[arg-type]
        await practice.set_schedule(conn, me, "19:00", list(range(7)), "Europe/Madrid",  # type: ignore[arg-type]
                                    datetime.now(UTC))
    await post(stack, p.changed_number(OLD, NEW, wamid()))
    await post(stack, p.text(NEW, None, wamid(), "what are my mistakes?"))
    await stack.fake.wait_for(2, seconds=15)
    assert sent_to(stack, NEW) == ["Your most frequent mistakes:\n• *ser vs estar* ×3: ~Yo es~ → Yo estoy"]
    assert await rows(db, "SELECT id, wa_id, data->>'level' FROM learners JOIN profiles ON learner_id = id") == [
        (me, NEW, "B1")]
    assert await rows(db, "SELECT kind, detail->'to'->>'wa_id' FROM learner_events") == [("number_changed", NEW)]
    async with stack.res.pool.connection() as conn:
        await conn.execute("UPDATE schedules SET next_run_at = now()")  # due now: the stack's scheduler sends it
    await stack.fake.wait_for(3, seconds=15)
    assert [m["to"] for m in stack.fake.sent] == [OLD, NEW, NEW]
    await post(stack, p.text(OLD, None, wamid(), "tarde"))  # a late delivery from the old number
    await stack.fake.wait_for(4, seconds=15)
    assert await rows(db, "SELECT count(*), count(DISTINCT learner_id) FROM messages") == [(7, 1)]
    assert [m["to"] for m in stack.fake.sent] == [OLD, NEW, NEW, NEW]  # answered where they are now


async def test_an_old_number_given_to_someone_else_later_is_a_new_learner(stack: Stack, db: str) -> None:
    await post(stack, p.text(OLD, None, wamid(), "hola"))
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.changed_number(OLD, NEW, wamid()))
    await eventually(lambda: _one_learner(db, None), 15, "moved")
    async with stack.res.pool.connection() as conn:
        await conn.execute("UPDATE learner_aliases SET created_at = now() - interval '15 days'")
    await post(stack, p.text(OLD, None, wamid(), "soy otra persona"))
    await stack.fake.wait_for(2, seconds=15)
    assert await rows(db, "SELECT wa_id FROM learners ORDER BY created_at") == [(NEW,), (OLD,)]


async def test_erasing_a_moved_learner_forgets_the_old_number_too(stack: Stack, db: str) -> None:
    await post(stack, p.text(OLD, None, wamid(), "hola"))
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.changed_number(OLD, NEW, wamid()))
    await eventually(lambda: _one_learner(db, None), 15, "moved")
    ((me,),) = await rows(db, "SELECT id FROM learners")
    async with stack.res.pool.connection() as conn:
        assert await learners.bus_keys(conn, me) == frozenset({f"wa:{NEW}", f"tw:whatsapp:+{NEW}", f"wa:{OLD}"})  # type: ignore[arg-type]
        await learners.erase(conn, me, server_key(stack.res.settings))  # type: ignore[arg-type]
    assert await rows(db, "SELECT count(*) FROM learner_aliases") == [(0,)]
    assert await rows(db, "SELECT count(*) FROM erased_quota") == [(2,)]  # the new number and the old one


def _b1_with_errors(stored: profile.Profile) -> None:
    stored.level = "B1"
    stored.errors["ser_estar"] = ErrorStat(count=3, examples=[Example(original="Yo es", corrected="Yo estoy")])


async def test_a_message_from_the_new_number_before_the_notice_is_folded_in(stack: Stack, db: str) -> None:
    await post(stack, p.text(OLD, None, wamid(), "hola"))
    await stack.fake.wait_for(1, seconds=15)
    ((me,),) = await rows(db, "SELECT id FROM learners")
    await post(stack, p.text(NEW, None, wamid(), "soy yo"))  # answered as a new learner, for now
    await stack.fake.wait_for(2, seconds=15)
    await post(stack, p.changed_number(OLD, NEW, wamid()))
    await eventually(lambda: _one_learner(db, me), 15, "the newcomer folded in")
    assert await rows(db, "SELECT count(DISTINCT learner_id) FROM messages") == [(1,)]


async def _one_learner(db: str, me: object) -> bool:
    found = await rows(db, "SELECT id, wa_id FROM learners")
    return found == [(me if me is not None else found[0][0], NEW)] if len(found) == 1 else False


async def test_the_operator_sees_the_number_change_and_the_opt_out(db: str, default_redis_server: str,
                                                                   redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server, CHARLA_ADMIN_TOKEN=TOKEN) as stack:
        await post(stack, p.text(OLD, None, wamid(), "hola"))
        await stack.fake.wait_for(1, seconds=15)
        await post(stack, p.changed_number(OLD, NEW, wamid()))
        await post(stack, p.text(NEW, None, wamid(), "STOP"))
        await stack.fake.wait_for(2, seconds=15)
        ((me,),) = await rows(db, "SELECT id FROM learners")
        page = await stack.http.get(f"/admin/learners/{me}", headers={"authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200
    assert "number changed" in page.text
    assert f"{OLD} → {NEW}" in page.text
    assert "opted out" in page.text


# ---- edits and deletions ----------------------------------------------------------------------------------

async def test_an_edit_before_the_answer_is_answered_as_edited(stack: Stack, db: str) -> None:
    original = wamid()
    both = p.text("16505550020", None, original, "Yo es cansado")  # one delivery: the edit is queued behind it
    both["entry"][0]["changes"][0]["value"]["messages"] += p.edit("16505550020", None, wamid(), original,
                                                                  "Yo estoy cansado")["entry"][0]["changes"][0][
        "value"]["messages"]
    await post(stack, both)
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.text("16505550020", None, wamid(), "gracias"))  # after both, in order
    await stack.fake.wait_for(2, seconds=15)
    assert sent_to(stack, "16505550020") == ["Echo: Yo estoy cansado", "Echo: gracias"]
    assert await rows(db, "SELECT kind, body, status FROM messages WHERE direction = 'in' ORDER BY id") == [
        ("text", "Yo estoy cansado", "answered"), ("edit", "Yo estoy cansado", "noted"),
        ("text", "gracias", "answered")]


async def test_an_edit_after_the_answer_is_acknowledged(stack: Stack, db: str) -> None:
    original = wamid()
    await post(stack, p.text(None, "US.ed", original, "Yo es cansado"))
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.edit(None, "US.ed", wamid(), original, "Yo estoy cansado"))
    await stack.fake.wait_for(2, seconds=15)
    first, acknowledged = sent_to(stack, "US.ed")
    assert first.startswith("Echo: Yo es cansado")  # with the checker's correction of "es cansado"
    assert acknowledged == "Got your edit 👍 I had already answered the first version."


async def test_an_edit_after_the_answer_has_its_words_checked_again(stack: Stack, db: str) -> None:
    original = wamid()
    await post(stack, p.text(None, "US.ed2", original, "Hola"))
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.edit(None, "US.ed2", wamid(), original, "Hola, yo soy cansado"))
    await stack.fake.wait_for(2, seconds=15)
    _, acknowledged = sent_to(stack, "US.ed2")
    assert acknowledged.startswith("Got your edit 👍 I had already answered the first version.")
    assert "~soy cansado~ → *estoy cansado*" in acknowledged


async def test_a_deleted_message_is_not_answered_and_leaves_the_log(stack: Stack, db: str) -> None:
    release = asyncio.Event()
    stack.llm.hold["hola"] = release
    await post(stack, p.text("16505550021", None, wamid(), "hola"))
    original = wamid()
    await post(stack, p.text("16505550021", None, original, "mi secreto"))
    await post(stack, p.revoke("16505550021", None, wamid(), original))
    release.set()
    await stack.fake.wait_for(1, seconds=15)
    await post(stack, p.text("16505550021", None, wamid(), "adiós"))  # after the deletion, in order
    await stack.fake.wait_for(2, seconds=15)
    assert sent_to(stack, "16505550021") == ["Echo: hola", "Echo: adiós"]
    logged = await rows(db, "SELECT kind, body, status, payload::text FROM messages WHERE direction = 'in' ORDER BY id")
    assert [row[:3] for row in logged] == [("text", "hola", "answered"), ("text", None, "revoked"),
                                           ("revoke", None, "noted"), ("text", "adiós", "answered")]
    assert not any("mi secreto" in str(row) for row in logged)
    assert "mi secreto" not in str(stack.llm.requests)


# ---- platform alerts ---------------------------------------------------------------------------------------

PLATFORM = [
    (p.template_status("charla_practice", "es", "REJECTED", "INVALID_FORMAT"),
     "template_status:charla_practice:es",
     "WhatsApp template charla_practice (es) is REJECTED: INVALID_FORMAT — it is CHARLA_PRACTICE_TEMPLATE: practice "
     "outside the 24-hour window is skipped until approved"),
    (p.template_status("other", "en_US", "PAUSED"), "template_status:other:en_US",
     "WhatsApp template other (en_US) is PAUSED"),
    (p.template_quality("other", "en_US", "RED"), "template_quality:other:en_US",
     "WhatsApp rates template other (en_US) RED (was GREEN)"),
    (p.template_category("other", "en_US", "MARKETING"), "template_category:other:en_US",
     "WhatsApp moved template other (en_US) to category MARKETING (was UTILITY)"),
    (p.account_update("ACCOUNT_RESTRICTION"), "account:ACCOUNT_RESTRICTION",
     "WhatsApp Business Account update ACCOUNT_RESTRICTION: RESTRICTED_BIZ_INITIATED_MESSAGING"),
    (p.account_update("ACCOUNT_VIOLATION"), "account:ACCOUNT_VIOLATION",
     "WhatsApp Business Account update ACCOUNT_VIOLATION: SCAM"),
]


@pytest.fixture
async def practised(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_PRACTICE_TEMPLATE="charla_practice",
                             CHARLA_PRACTICE_TEMPLATE_LANGUAGE="es", CHARLA_ADMIN_TOKEN=TOKEN) as running:
        yield running


async def test_platform_updates_raise_alerts_in_status_and_the_dashboard(practised: Stack) -> None:
    for payload, _, _ in PLATFORM:
        await post(practised, payload)
    expected = {code: text for _, code, text in PLATFORM}
    await eventually(lambda: _alerts_are(practised, expected), 15, "every alert")
    report = status.render(await status.collect(practised.res.settings), time.time())
    assert all(f"code {code}: {text}" in report for code, text in expected.items())
    page = await practised.http.get("/admin", headers={"authorization": f"Bearer {TOKEN}"})
    assert "WhatsApp moved template other (en_US) to category MARKETING" in page.text
    assert practised.fake.sent == []  # nobody is written to about it
    await post(practised, p.template_status("other", "en_US", "APPROVED"))  # good news resolves its alert
    del expected["template_status:other:en_US"]
    await eventually(lambda: _alerts_are(practised, expected), 15, "the approved template's alert gone")


async def _alerts_are(stack: Stack, expected: dict[str, str]) -> bool:
    return {code: a["message"] for code, a in (await alerts.current(stack.res.redis)).items()} == expected


async def test_a_practice_template_that_is_not_approved_is_not_used(practised: Stack, db: str) -> None:
    await post(practised, p.text("16505550030", None, wamid(), "hola"))
    await practised.fake.wait_for(1, seconds=15)
    await post(practised, p.template_status("charla_practice", "es", "PAUSED"))
    await eventually(lambda: alerts.template_status(practised.res.redis, "charla_practice", "es"), 15, "status")
    ((me,),) = await rows(db, "SELECT id FROM learners")
    async with practised.res.pool.connection() as conn:
        await conn.execute("UPDATE learners SET last_inbound_at = now() - interval '30 hours'")  # window closed
        await practice.set_schedule(conn, me, "19:00", list(range(7)), "Europe/Madrid",  # type: ignore[arg-type]
                                    datetime.now(UTC))
        await conn.execute("UPDATE schedules SET next_run_at = now()")
    await eventually(lambda: _skip_reason_is(db, "CHARLA_PRACTICE_TEMPLATE charla_practice is PAUSED at WhatsApp"),
                     15, "the prompt skipped with its reason")
    assert len(practised.fake.sent) == 1


async def _skip_reason_is(db: str, reason: str) -> bool:
    return await rows(db, "SELECT status, reason FROM practice_prompts") == [("skipped", reason)]
