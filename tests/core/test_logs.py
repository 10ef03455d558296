"""Logs: the redaction filter on every part of a record, the JSON shape, and a whole conversation (with an
invalid model reply, a blocked number and a delete-my-data) whose INFO+ logs name no learner."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import pytest
from redis.asyncio import Redis

from charla.channels.twilio.api import TwilioClient
from charla.core import constants as c
from charla.core import logs
from payments import entitlements
from tests.support.harness import Stack, running_stack
from tests.support.helpers import eventually, make_settings
from tests.support.payloads import text_webhook
from tests.support.servers import serve_fake_twilio

PHONE = "34611987654"
BLOCKED_PHONE = "34622876543"
NAME = "Zebulon Quixote-Marrow"
TEXT = "Mi gato Bartolomeo come pizza de anchoas"
SECRET_FRAGMENTS = (PHONE, BLOCKED_PHONE, "Zebulon", "Quixote", "Bartolomeo", "anchoas")


@pytest.fixture
def capture() -> Iterator[Callable[[], io.StringIO]]:
    """Attaches JSON log captures to the root logger as charla.core.logs.configure does (each replaces the
    last); levels and handlers are restored afterwards."""
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in logs.NOISY}
    handlers: list[logging.Handler] = []

    def attach() -> io.StringIO:
        stream = io.StringIO()
        handlers.append(logs.configure(make_settings(CHARLA_LOG_FORMAT="json", CHARLA_LOG_LEVEL="INFO"),
                                       process="test", stream=stream))
        return stream

    yield attach
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def out(capture: Callable[[], io.StringIO]) -> io.StringIO:
    return capture()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def expected_tag(digits: str) -> str:
    return "tel#" + hashlib.sha256(digits.encode()).hexdigest()[:6]


# --- the filter -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "clean"), [
    ("wa:34600111222 wrote", f"wa:{expected_tag('34600111222')} wrote"),
    ("from whatsapp:+34600111222", f"from whatsapp:{expected_tag('34600111222')}"),
    ("+1 415 call 4155238886", f"+1 415 call {expected_tag('4155238886')}"),
    ("seq 42 after 123456 tries in 0.5s", "seq 42 after 123456 tries in 0.5s"),  # short runs are no phone
])
def test_redact_hashes_digit_runs_of_seven_or_more(text: str, clean: str) -> None:
    assert logs.redact(text) == clean


def test_the_tag_is_stable_unsalted_and_ignores_the_plus() -> None:
    assert logs.tag("34600111222") == logs.tag("+34600111222") == expected_tag("34600111222")
    assert logs.tag("34600111222") != logs.tag("34600111223")


def test_pseudonym_hides_numbers_and_handles() -> None:
    assert logs.pseudonym("wa:34600111222") == f"wa:{expected_tag('34600111222')}"
    assert logs.pseudonym("tw:whatsapp:+34600111222") == f"tw:whatsapp:{expected_tag('34600111222')}"
    console = logs.pseudonym("console:ana")
    assert console.startswith("console:#")
    assert "ana" not in console


def test_message_args_extras_and_exceptions_are_redacted(out: io.StringIO) -> None:
    log = logging.getLogger("charla.test")
    log.info("learner %s said hi", "wa:34600111222", extra={"learner": "whatsapp:+34600111222", "n": 3})
    try:
        raise ValueError("no route to +34600111222")
    except ValueError:
        log.exception("send failed for %s", "34600111222")
    first, second = lines(out)
    tag = expected_tag("34600111222")
    assert first["message"] == f"learner wa:{tag} said hi"
    assert first["learner"] == f"whatsapp:{tag}"
    assert first["n"] == 3
    assert second["message"] == f"send failed for {tag}"
    assert f"ValueError: no route to {tag}" in str(second["exc_info"])
    assert "34600111222" not in out.getvalue()


def test_json_lines_carry_time_level_logger_message_process(out: io.StringIO) -> None:
    logging.getLogger("agents.test").warning("a plain line", extra={"turn_id": 7})
    [line] = lines(out)
    assert {"time", "level", "logger", "message", "process"} <= line.keys()
    assert (line["level"], line["logger"], line["message"], line["process"]) == (
        "WARNING", "agents.test", "a plain line", "test")
    assert line["turn_id"] == 7
    assert str(line["time"]).endswith("+00:00")


def test_text_format_is_redacted_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("text", "voice"))
    handler.addFilter(logs.Redact())
    record = logging.LogRecord("voice.agent", logging.INFO, __file__, 1, "note from %s", ("wa:34600111222",), None)
    handler.handle(record)
    assert stream.getvalue().rstrip().endswith(f"INFO [voice] voice.agent: note from wa:{expected_tag('34600111222')}")


def test_arguments_that_do_not_fit_are_logged_not_raised(out: io.StringIO) -> None:
    logging.getLogger("charla.test").info("two %s %s", "34600111222")
    [line] = lines(out)
    assert "34600111222" not in str(line["message"])
    assert expected_tag("34600111222") in str(line["message"])


def test_configure_replaces_its_handler_and_quiets_chatty_libraries(capture: Callable[[], io.StringIO]) -> None:
    first, second = capture(), capture()
    logging.getLogger("charla.test").info("once")
    logging.getLogger("httpx").info("HTTP Request: POST https://api.twilio.com/To=whatsapp:+34600111222")
    assert first.getvalue() == ""
    assert [line["message"] for line in lines(second)] == ["once"]
    assert sum(h.get_name() == logs.HANDLER_NAME for h in logging.getLogger().handlers) == 1
    assert logging.getLogger("httpx").level == logging.WARNING


async def test_a_twilio_send_logs_nothing_from_the_sdk_at_info(capture: Callable[[], io.StringIO]) -> None:
    """The SDK's async client logs method, URL, headers and body at INFO (9 lines a send): quieted."""
    out = capture()
    async with serve_fake_twilio() as (fake, url):
        channel = TwilioClient(account_sid="AC1", auth_token="tok", base_url=url, from_number="whatsapp:+14155238886",
                                status_callback=None)
        try:
            assert (await channel.send_text("whatsapp:+34600111222", TEXT)).startswith("SM")
        finally:
            await channel.aclose()
    assert len(fake.sent) == 1
    from_sdk = [line["message"] for line in lines(out) if str(line["logger"]).startswith("twilio")]
    assert from_sdk == [], from_sdk
    assert logging.getLogger("twilio.async_http_client").getEffectiveLevel() == logging.WARNING


# --- a whole conversation -------------------------------------------------------------------------------


@pytest.fixture
async def stack(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[Stack]:
    async with running_stack(db, default_redis_server, CHARLA_LLM_MAX_RETRIES="0") as running:
        yield running


async def say(stack: Stack, text: str, n: int, wa_id: str = PHONE) -> None:
    body = text_webhook(wa_id, f"wamid.logs{n}", text, name=NAME)
    assert (await stack.post(body)).status_code == 200


async def rows(db: str, query: str, *args: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        return list(await (await conn.execute(query.encode(), args)).fetchall())


async def tables_with_learner_id(db: str) -> list[str]:
    found = await rows(db, """SELECT table_name FROM information_schema.columns
                              WHERE table_schema = 'public' AND column_name = 'learner_id'""")
    return sorted(str(t) for (t,) in found)


async def test_a_conversation_logs_no_number_name_or_words_and_erasure_leaves_nothing(
        out: io.StringIO, stack: Stack, db: str, redis_default: Redis) -> None:
    # The model's first answer is invalid and quotes the learner: the repair path logs about it.
    stack.llm.script["groq"] = [json.dumps({"reply": [TEXT], "learner_name": NAME})]
    await say(stack, TEXT, 0)
    await stack.fake.wait_for(1, seconds=20)
    assert stack.fake.sent[0]["to"] == PHONE  # answered after the repair: the conversation really happened
    [(learner_id,)] = await rows(db, "SELECT id FROM learners WHERE wa_id = %s", PHONE)

    await entitlements.block(redis_default, f"wa:{BLOCKED_PHONE}")
    await say(stack, TEXT, 1, wa_id=BLOCKED_PHONE)

    async def dropped() -> bool:
        return "is blocked" in out.getvalue()

    await eventually(dropped, 20, "the blocked learner's message is dropped")

    await say(stack, "delete my data", 2)
    await stack.fake.wait_for(2, seconds=20)
    await say(stack, "yes", 3)
    await stack.fake.wait_for(3, seconds=20)

    logged = out.getvalue()
    assert len(lines(out)) >= 2, logged
    assert "invalid structured reply" in logged  # the risky paths were taken and logged...
    assert f"wa:{expected_tag(BLOCKED_PHONE)}" in logged  # ...with the number hashed
    leaked = [secret for secret in SECRET_FRAGMENTS if secret in logged]
    assert not leaked, f"{leaked} logged at INFO or above:\n{logged}"

    assert learner_id is not None
    for table in await tables_with_learner_id(db):
        left = await rows(db, f"SELECT count(*) FROM {table} WHERE learner_id = %s", learner_id)  # noqa: S608
        assert left == [(0,)], f"{table} still holds rows of the erased learner"
    assert await rows(db, "SELECT count(*) FROM learners WHERE id = %s", learner_id) == [(0,)]
    assert await rows(db, "SELECT count(*) FROM messages WHERE body LIKE %s", f"%{TEXT}%") == [(0,)]
    assert await redis_default.get(c.SESSION_KEY.format(learner=f"wa:{PHONE}")) is None
    keys = [str(k) for k in await redis_default.keys("*")]
    assert not [k for k in keys if str(learner_id) in k or uuid.UUID(str(learner_id)).hex in k]


def test_stream_entry_ids_are_not_taken_for_phone_numbers() -> None:
    assert logs.redact("replayed 1795275735498-0 as 1795275735499-12") == "replayed 1795275735498-0 as 1795275735499-12"
    assert "34600111222" not in logs.redact("wa:34600111222-x")
