"""Hostile input: the orchestrator's schema fuzzed by schemathesis, the webhook parsers by hypothesis (directly
and through HTTP), forged and replayed signatures, oversized and slow bodies, and the atheris harness.

What tests/orchestrator/test_orchestrator.py, test_twilio.py and test_payments.py already cover (garbage signatures,
malformed JSON, an oversized WhatsApp body with and without Content-Length, stale Stripe signatures) is not
repeated here.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pydantic
import pytest
import stripe
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis import openapi as schemathesis_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator

from bench import fuzz_targets
from bench.fuzz_targets import EXPECTED, STRIPE_SECRET, TARGETS, TWILIO_TOKEN, TWILIO_URL, stripe_signature
from charla.channels.chunking import split_text
from charla.channels.meta import webhook as meta
from charla.channels.twilio import webhook as twilio_hooks
from charla.core import constants as c
from orchestrator.app import create_app
from payments.webhook import parse
from tests.support.harness import running_stack
from tests.support.helpers import make_settings
from tests.support.payloads import APP_SECRET, fixture_bytes, fixture_json, sign, text_webhook
from tests.support.servers import serve
from tests.support.strategies import (
    HOSTILE_TEXT,
    META_DELIVERIES,
    STRIPE_EVENTS,
    STRIPE_FIXTURES,
    TEXT,
    TWILIO_FORM,
    json_bytes,
    nested,
    twilio_forms,
)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
STREAMS = (c.STREAM_INBOUND, c.STREAM_VOICE, c.STREAM_STATUSES, c.STREAM_PAYMENTS)
TWILIO_PATH = urlsplit(TWILIO_URL).path
FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def hostile_env(db: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Every provider configured, so each webhook route does its real work."""
    return {"DATABASE_URL": db, "REDIS_URL": redis_url, "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "meatyhamhock", "WHATSAPP_ACCESS_TOKEN": "token",
            "WHATSAPP_PHONE_NUMBER_ID": "106540352242922", "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET, "CHARLA_ADMIN_TOKEN": "admin-token-for-hostile-tests", **extra}


@asynccontextmanager
async def hostile_server(db: str, redis_url: str, **extra: str) -> AsyncIterator[str]:
    """The orchestrator served by uvicorn on loopback (the real HTTP stack); yields its base URL."""
    async with serve(create_app(make_settings(**hostile_env(db, redis_url, **extra))), lifespan="on") as url:
        yield url


@pytest.fixture
async def http(db: str, default_redis_server: str, redis_default: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with hostile_server(db, default_redis_server, CHARLA_PUBLIC_URL="https://example.com") as url, \
            httpx.AsyncClient(base_url=url) as client:
        yield client


async def stream_lengths(redis: Redis) -> list[int]:
    return [await redis.xlen(stream) for stream in STREAMS]


async def nothing_published(redis: Redis) -> bool:
    return await stream_lengths(redis) == [0] * len(STREAMS)


# --- a. the OpenAPI schema, fuzzed in process (schemathesis drives the real app through ASGI)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


def fuzz_operation(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode) -> None:
    """Up to 30 derandomized cases of `operation`, every answer checked against the schema."""

    @settings(max_examples=30, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    try:
        run()
    except Exception as exc:
        exc.add_note(f"schemathesis: {operation.label} ({mode})")
        raise


def fuzz_schema(app: FastAPI) -> list[str]:
    """Every operation of the app's own /openapi.json, with valid and invalid data; the operations run."""
    schema = schemathesis_openapi.from_asgi("/openapi.json", app)
    labels = []
    try:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operation = result.ok()
            fuzz_operation(operation, GenerationMode.POSITIVE)
            # Invalid data exists only where something is constrained (any string is a valid media token).
            if operation.body or any(operation.headers) or any(operation.query):
                fuzz_operation(operation, GenerationMode.NEGATIVE)
            labels.append(operation.label)
    finally:
        schemathesis_asgi.shutdown_lifespans()  # the app's clients, opened in schemathesis' event loop
    return labels


async def test_every_operation_survives_schemathesis(db: str, default_redis_server: str, redis_default: Redis) -> None:
    """The admin dashboard and the console are not in the schema (include_in_schema=False): nothing to
    authenticate. No answer is a 5xx, and each has a status, content type and body the schema declares."""
    app = create_app(make_settings(**hostile_env(db, default_redis_server)))
    labels = await asyncio.to_thread(fuzz_schema, app)
    assert "POST /webhooks/whatsapp" in labels
    assert len(labels) == len(app.openapi()["paths"]) + 1  # /webhooks/whatsapp has GET and POST
    assert await nothing_published(redis_default)  # nothing it made up carried a valid signature


# --- b. the parsers, fuzzed with mutated real payloads and arbitrary bytes

@FUZZ
@given(payload=META_DELIVERIES)
def test_meta_parsers_take_any_mutated_delivery(payload: Any) -> None:
    with suppress(meta.NotADelivery):  # nested too deep: the route's 400
        fuzz_targets.meta_delivery(meta.load(json_bytes(payload)))  # parsed, and encoded as the bus would


@FUZZ
@given(form=twilio_forms(), url=HOSTILE_TEXT | st.sampled_from(["http://example.com:abc/", "https://[::1/x"]),
       signature=HOSTILE_TEXT)
def test_twilio_parsers_take_any_mutated_form(form: dict[str, str], url: str, signature: str) -> None:
    fuzz_targets.twilio_form(form)
    assert twilio_hooks.signature_ok(url, form, signature, TWILIO_TOKEN) is False


@FUZZ
@given(event=STRIPE_EVENTS)
def test_stripe_parse_takes_any_mutated_event_or_says_it_is_not_one(event: Any) -> None:
    with suppress(*EXPECTED["stripe"]):
        fuzz_targets.stripe_event(fuzz_targets.SIGN + b"\n" + json_bytes(event))


@FUZZ
@given(target=st.sampled_from(sorted(TARGETS)),
       data=st.binary(max_size=4096) | st.binary(max_size=4096).map(lambda b: fuzz_targets.SIGN + b"\n" + b))
def test_every_parser_takes_arbitrary_bytes(target: str, data: bytes) -> None:
    """The same oracles the atheris harness runs: a parsed result or the parser's typed error."""
    with suppress(*EXPECTED[target]):
        TARGETS[target](data)


@FUZZ
@given(text=TEXT, limit=st.integers(0, 64))
def test_split_text_takes_any_text_even_lone_surrogates(text: str, limit: int) -> None:
    fuzz_targets.split_checked(text, limit)


# Each defect the fuzzing found, pinned.


@pytest.mark.parametrize("stamp", ["²", "١٢٣", "99999999999999999999", 10**15, "9" * 5000])
def test_an_impossible_timestamp_is_no_timestamp(stamp: object) -> None:
    delivery = {"entry": [{"changes": [{"value": {"messages": [{"id": "wamid.t", "from": "1", "timestamp": stamp}],
                                                  "statuses": [{"id": "wamid.s", "status": "read",
                                                                "timestamp": stamp}]}}]}]}
    (message,) = meta.inbound_messages(delivery)
    (status,) = meta.statuses(delivery)
    assert message.sent_at is None
    assert status.occurred_at is None


def test_non_ascii_signature_headers_are_refused_not_crashed() -> None:
    body = fixture_bytes("wa_text.json")
    assert meta.signature_ok(body, "sha256=é" + sign(body)[8:], APP_SECRET) is False
    with pytest.raises(stripe.SignatureVerificationError):
        parse(fixture_bytes(STRIPE_FIXTURES[0]), "t=1700000000,v1=é", STRIPE_SECRET, tolerance=None)


def test_twilio_numbers_that_are_not_numbers() -> None:
    for media in ("abc", "²", "-1", "1" * 5000):
        message = twilio_hooks.inbound_message({**TWILIO_FORM, "NumMedia": media})
        assert message is not None
        assert message.kind == "text"
    status = twilio_hooks.delivery_status({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "²"})
    assert status is not None
    assert status.errors == []


@pytest.mark.parametrize("change", [{"created": {"a": 1}}, {"created": [1]}, {"created": 2**64}, {"data": [1]},
                                    {"data": {"object": [1]}}, {"data": {"object": {"parent": [1]}}},
                                    {"data": "x"}, {"created": True}])
def test_a_signed_stripe_event_of_the_wrong_shape_is_not_an_event_or_is_read_tolerantly(
        change: dict[str, Any]) -> None:
    body = json_bytes(fixture_json("stripe_checkout_session_completed.json") | change)
    try:
        event = parse(body, stripe_signature(body), STRIPE_SECRET, tolerance=None)
    except ValueError:
        return
    assert isinstance(event.payload, dict)


def test_deep_nesting_is_refused_before_anything_is_published() -> None:
    deep = nested("x", 300)
    body = json_bytes(fixture_json("stripe_checkout_session_completed.json") | {"data": {"object": {"x": deep}}})
    with pytest.raises(ValueError, match="nested deeper"):
        parse(body, stripe_signature(body), STRIPE_SECRET, tolerance=None)


def test_nul_characters_never_reach_postgresql_from_any_provider() -> None:
    """PostgreSQL's text and JSONB refuse NUL: a learner's "ho\\u0000la" was dead-lettered unanswered."""
    delivery = text_webhook("34600000001", "wamid.n\x00ul", "ho\x00la")
    (message,) = meta.inbound_messages(meta.load(delivery))
    assert (message.text, message.message_id) == ("hola", "wamid.nul")
    assert "\\u0000" not in message.model_dump_json()
    twilio = twilio_hooks.inbound_message({**TWILIO_FORM, "Body": "ho\x00la", "ProfileName": "\x00"})
    assert twilio is not None
    assert (twilio.text, twilio.identity.name) == ("hola", None)
    event = fixture_json(STRIPE_FIXTURES[0])
    event["data"]["object"]["customer_details"] = {"name": "A\x00B"}
    body = json_bytes(event)
    parsed = parse(body, stripe_signature(body), STRIPE_SECRET, tolerance=None)
    assert parsed.payload["customer_details"] == {"name": "AB"}


async def test_a_nul_in_a_message_is_answered_not_dead_lettered(db: str, default_redis_server: str,
                                                               redis_default: Redis) -> None:
    async with running_stack(db, default_redis_server) as stack:
        assert (await stack.post(text_webhook("34600000001", "wamid.nul", "ho\x00la"))).status_code == 200
        await stack.fake.wait_for(1, seconds=20)
        assert stack.fake.echoed() == ["hola"]
    assert await redis_default.xlen(f"{c.STREAM_INBOUND}:dead") == 0


def test_lone_surrogates_are_counted_not_crashed_on() -> None:
    assert split_text("hola \udc80 qué tal " * 3, 10) == ["hola \udc80 ", "qué tal ", "hola \udc80 ", "qué tal ",
                                                           "hola \udc80 ", "qué tal "]


def test_body_timeout_must_be_positive() -> None:
    assert make_settings(CHARLA_BODY_TIMEOUT_S="0.25").body_timeout_s == 0.25
    with pytest.raises(pydantic.ValidationError):
        make_settings(CHARLA_BODY_TIMEOUT_S="0")


# --- b, through HTTP: signed hostile bodies get 2xx or a 4xx JSON error, never 500; refused ones publish nothing


@dataclass(frozen=True)
class Signed:
    path: str
    body: bytes
    headers: dict[str, str]


def signed_meta(body: bytes) -> Signed:
    return Signed("/webhooks/whatsapp", body, {"x-hub-signature-256": sign(body), "content-type": "application/json"})


def signed_stripe(body: bytes) -> Signed:
    return Signed("/webhooks/stripe", body, {"stripe-signature": stripe_signature(body, at=int(time.time()))})


def signed_twilio(body: bytes) -> Signed:
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))  # as the route reads it
    return Signed(TWILIO_PATH, body, {"content-type": "application/x-www-form-urlencoded",
                                      "x-twilio-signature": RequestValidator(TWILIO_TOKEN).compute_signature(
                                          TWILIO_URL, form)})


SIGNED_REQUESTS = st.one_of(
    META_DELIVERIES.map(json_bytes).map(signed_meta),
    STRIPE_EVENTS.map(json_bytes).map(signed_stripe),
    twilio_forms().map(lambda form: urlencode(form).encode()).map(signed_twilio),
    st.tuples(st.sampled_from([signed_meta, signed_stripe, signed_twilio]), st.binary(max_size=2048))
    .map(lambda pair: pair[0](pair[1])),
)


def run_given(strategy: st.SearchStrategy[T], check: Callable[[T], Coroutine[Any, Any, None]],
              loop: asyncio.AbstractEventLoop, examples: int) -> None:
    """Hypothesis in this (worker) thread, each example checked by `check` on the test's event loop."""

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(value=strategy)
    def run(value: T) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(timeout=30)

    run()


async def test_signed_hostile_bodies_never_get_a_server_error(http: httpx.AsyncClient, redis_default: Redis) -> None:
    answered: dict[int, int] = {}

    async def check(request: Signed) -> None:
        before = await stream_lengths(redis_default)
        response = await http.post(request.path, content=request.body, headers=request.headers)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, (request, response.status_code, response.text)
        if response.status_code >= 400:
            assert isinstance(response.json()["error"], str)
            assert await stream_lengths(redis_default) == before, "a refused body published something"

    await asyncio.to_thread(run_given, SIGNED_REQUESTS, check, asyncio.get_running_loop(), 150)
    assert answered.get(200, 0) > 20, answered  # accepted bodies and refused ones were both exercised
    assert answered.get(400, 0) > 10, answered


# --- c. replayed and forged signatures (garbage ones and stale Stripe ones are in the older tests)


async def test_forged_meta_signatures_are_refused(http: httpx.AsyncClient, redis_default: Redis) -> None:
    body, genuine = fixture_bytes("wa_text.json"), sign(fixture_bytes("wa_text.json"))
    forged = {
        "another body's": sign(fixture_bytes("wa_image.json")), "wrong secret": sign(body, "not_the_app_secret"),
        "truncated": genuine[:-1], "no sha256= prefix": genuine.removeprefix("sha256="),
        "uppercase prefix": "SHA256=" + genuine.removeprefix("sha256="), "empty": "",
        "non-ASCII": "sha256=é" + genuine[8:]}
    refused = (401, {"error": "missing or invalid X-Hub-Signature-256"})
    for what, header in forged.items():  # sent as latin-1 bytes, as a client may
        response = await http.post("/webhooks/whatsapp", content=body,
                                   headers={b"x-hub-signature-256": header.encode("latin-1")})
        assert (response.status_code, response.json()) == refused, what
    for pair in ([genuine, sign(b"x")], [sign(b"x"), genuine], [genuine, genuine]):  # ambiguous: refused
        response = await http.post("/webhooks/whatsapp", content=body,
                                   headers=[("x-hub-signature-256", value) for value in pair])
        assert response.status_code == 401, pair
    assert await nothing_published(redis_default)
    upper = await http.post("/webhooks/whatsapp", content=body,  # the MAC is hex: its case does not matter
                            headers={"x-hub-signature-256": "sha256=" + genuine.removeprefix("sha256=").upper()})
    assert upper.json() == {"status": "ok", "published": 1}


async def test_a_delivery_nested_too_deep_is_refused_whole(http: httpx.AsyncClient, redis_default: Redis) -> None:
    """The bus's encoder gives up near 250 levels: without the check the second message failed the webhook
    (500) after the first was published."""
    delivery = fixture_json("wa_text.json")
    value = delivery["entry"][0]["changes"][0]["value"]
    deep = {**value["messages"][0], "id": "wamid.deep", "extra": nested("x", 300)}
    value["messages"].append(deep)
    response = await http.post("/webhooks/whatsapp", content=json_bytes(delivery),
                               headers={"x-hub-signature-256": sign(json_bytes(delivery))})
    assert (response.status_code, response.json()) == (400, {"error": "JSON nested deeper than 64 levels"})
    assert await nothing_published(redis_default)


async def test_a_delivery_replayed_five_times_at_once_is_published_once(
        http: httpx.AsyncClient, redis_default: Redis) -> None:
    body = fixture_bytes("wa_text.json")
    replies = await asyncio.gather(*(http.post("/webhooks/whatsapp", content=body,
                                               headers={"x-hub-signature-256": sign(body)}) for _ in range(5)))
    assert sorted(r.json()["published"] for r in replies) == [0, 0, 0, 0, 1]
    assert await redis_default.xlen(c.STREAM_INBOUND) == 1


async def test_forged_stripe_signatures_are_refused(http: httpx.AsyncClient, redis_default: Redis) -> None:
    body, other = fixture_bytes(STRIPE_FIXTURES[0]), fixture_bytes(STRIPE_FIXTURES[1])
    genuine = stripe_signature(body, at=int(time.time()))
    forged = [stripe_signature(other, at=int(time.time())), genuine[:-1], genuine.replace("v1=", "v0="),
              genuine.split(",")[1], "t=1700000000,v1=é"]
    for header in forged:
        response = await http.post("/webhooks/stripe", content=body,
                                   headers={b"stripe-signature": header.encode("latin-1")})
        assert (response.status_code, response.json()) == (400, {"error": "invalid or stale Stripe-Signature"}), header
    twice = await http.post("/webhooks/stripe", content=body,
                            headers=[("stripe-signature", genuine), ("stripe-signature", forged[0])])
    assert twice.status_code == 400
    assert await nothing_published(redis_default)
    assert (await http.post("/webhooks/stripe", content=body, headers={"stripe-signature": genuine})).status_code == 200


async def test_forged_twilio_signatures_are_refused(http: httpx.AsyncClient, redis_default: Redis) -> None:
    body = urlencode(TWILIO_FORM).encode()
    genuine = RequestValidator(TWILIO_TOKEN).compute_signature(TWILIO_URL, TWILIO_FORM)
    cases = {"for another URL": ("/webhooks/twilio", body, genuine),
             "a changed field": (TWILIO_PATH, urlencode({**TWILIO_FORM, "Body": "changed"}).encode(), genuine),
             "non-ASCII": (TWILIO_PATH, body, "é")}
    form = (b"content-type", b"application/x-www-form-urlencoded")
    for what, (path, content, signature) in cases.items():
        response = await http.post(path, content=content,
                                   headers=[form, (b"x-twilio-signature", signature.encode("latin-1"))])
        assert response.status_code == 401, what
    twice = await http.post(TWILIO_PATH, content=body, headers=[form, *[(b"x-twilio-signature", genuine.encode())] * 2])
    assert twice.status_code == 401  # the same genuine signature twice: still ambiguous, refused
    assert await nothing_published(redis_default)
    assert (await http.post(TWILIO_PATH, content=body, headers={"x-twilio-signature": genuine,
                                                               "content-type": form[1].decode()})).status_code == 200


async def test_a_forged_host_never_breaks_the_twilio_check(db: str, default_redis_server: str,
                                                           redis_default: Redis) -> None:
    """Without CHARLA_PUBLIC_URL the signed URL is built from the Host header, which the client chooses
    (Starlette falls back to the server's address when its port is not a port; signature_ok would refuse an
    unparseable URL anyway)."""
    async with hostile_server(db, default_redis_server) as url, httpx.AsyncClient(base_url=url) as client:
        for host in ("example.com:abc", "[::1", "example.com:99999"):
            response = await client.post(TWILIO_PATH, content=urlencode(TWILIO_FORM),
                                         headers={"host": host, "x-twilio-signature": "x",
                                                  "content-type": "application/x-www-form-urlencoded"})
            assert response.status_code == 401, host
    assert await nothing_published(redis_default)


# --- d. oversized bodies without a Content-Length, and with a lying one (over a raw socket)


async def chunks(body: bytes, size: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


async def test_chunked_oversized_bodies_are_refused_on_twilio_and_stripe(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    """(WhatsApp's own route is covered in test_orchestrator.)"""
    big = [signed_twilio(urlencode({**TWILIO_FORM, "Body": "x" * 4000}).encode()),
           signed_stripe(json_bytes({"id": "evt_1", "type": "x", "pad": "x" * 4000}))]
    env = {"CHARLA_MAX_BODY_BYTES": "1000", "CHARLA_PUBLIC_URL": "https://example.com"}
    async with hostile_server(db, default_redis_server, **env) as url, httpx.AsyncClient(base_url=url) as client:
        for request in big:
            response = await client.post(request.path, content=chunks(request.body), headers=request.headers)
            assert (response.status_code, response.json()) == (413, {"error": "body larger than 1000 bytes"})
        assert await nothing_published(redis_default)
        normal = signed_meta(text_webhook("34600000001", "wamid.after", "hola"))
        assert (await client.post(normal.path, content=normal.body, headers=normal.headers)).status_code == 200


def request_head(path: str, headers: dict[str, str], length: int | None) -> bytes:
    """A POST's request line and headers; `length` None means chunked."""
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", framing, *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


def statuses(raw: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"(?:^|\r\n)HTTP/1\.1 (\d{3}) ", raw)]


async def test_a_lying_content_length_never_smuggles_a_body(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    """The server hands the app only the declared bytes, so a too-small Content-Length is not a 413: the short
    body fails its signature (401, when the app gets to answer) and the rest is a malformed next request, which
    uvicorn refuses (400) and closes. Content-Length with chunked framing never reaches the app."""
    body = text_webhook("34600000001", "wamid.lie", "x" * 5000)
    headers = {"x-hub-signature-256": sign(body)}
    async with hostile_server(db, default_redis_server, CHARLA_MAX_BODY_BYTES="1000") as url:
        async with connection(url) as (reader, writer):
            writer.write(request_head("/webhooks/whatsapp", headers, 100) + body)
            async with asyncio.timeout(10):
                answers = statuses(await reader.read())
            assert answers in ([400], [401, 400]), answers
        async with connection(url) as (reader, writer):
            smuggled = request_head("/webhooks/whatsapp", {**headers, "Content-Length": "10"}, None)
            writer.write(smuggled + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
            async with asyncio.timeout(10):
                assert statuses(await reader.read()) == [400]
        assert await nothing_published(redis_default)
        async with httpx.AsyncClient(base_url=url) as client:
            normal = signed_meta(text_webhook("34600000001", "wamid.honest", "hola"))
            assert (await client.post(normal.path, content=normal.body, headers=normal.headers)).status_code == 200


# --- e. slow bodies: a deadline on the whole body (the header phase is the reverse proxy's: see read_body)


async def stall(writer: asyncio.StreamWriter, path: str, headers: dict[str, str], *, chunked: bool = False) -> None:
    """Send the headers and a bit of the body, then nothing more."""
    writer.write(request_head(path, headers, None if chunked else 1000) + (b"a\r\n0123456789" if chunked else b"{"))
    await writer.drain()


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, raw answer) once the server closes the connection."""
    async with asyncio.timeout(10):
        raw = await reader.read()
    return statuses(raw)[0], raw


async def stalled(url: str, path: str, headers: dict[str, str], *, chunked: bool = False) -> tuple[int, bytes]:
    async with connection(url) as (reader, writer):
        await stall(writer, path, headers, chunked=chunked)
        return await answer(reader)


async def dribbled(url: str, body: bytes, every_s: float) -> tuple[int, float]:
    """Send `body` one byte at a time, the next each `every_s` unless the server answers first (a client that
    never goes quiet for long): (status, seconds until the answer)."""
    loop = asyncio.get_running_loop()
    async with connection(url) as (reader, writer):
        writer.write(request_head("/webhooks/whatsapp", {"x-hub-signature-256": sign(body)}, len(body)))
        started, answer = loop.time(), asyncio.create_task(reader.read())
        for byte in body:
            writer.write(bytes([byte]))
            done, _ = await asyncio.wait({answer}, timeout=every_s)
            if done:
                break
        async with asyncio.timeout(10):
            raw = await answer
    return statuses(raw)[0], loop.time() - started


async def test_a_stalled_or_dribbled_body_gets_408_and_the_connection_closed(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    body = text_webhook("34600000001", "wamid.slow", "hola " * 200)
    async with hostile_server(db, default_redis_server, CHARLA_BODY_TIMEOUT_S="0.5") as url:
        answers = await asyncio.gather(stalled(url, "/webhooks/whatsapp", {}),
                                       stalled(url, "/webhooks/whatsapp", {}, chunked=True),
                                       stalled(url, TWILIO_PATH, {}), stalled(url, "/webhooks/stripe", {}),
                                       dribbled(url, body, every_s=0.05))
    for status, raw in answers[:4]:
        assert status == 408
        assert raw.endswith(b'{"error":"body not received within 0.5 s"}')
        assert b"\r\nconnection: close\r\n" in raw.lower()
    status, seconds = answers[4]
    assert status == 408
    assert seconds >= 0.5  # a whole-body deadline: a byte every 50 ms does not keep it alive
    assert await nothing_published(redis_default)


async def test_fifty_stalled_bodies_do_not_hold_up_a_real_webhook(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    async with hostile_server(db, default_redis_server, CHARLA_BODY_TIMEOUT_S="3") as url, \
            httpx.AsyncClient(base_url=url) as client, AsyncExitStack() as open_connections:
        held = [await open_connections.enter_async_context(connection(url)) for _ in range(50)]
        for _, writer in held:
            await stall(writer, "/webhooks/whatsapp", {})
        slow = [asyncio.create_task(answer(reader)) for reader, _ in held]
        normal = signed_meta(text_webhook("34600000001", "wamid.prompt", "hola"))
        async with asyncio.timeout(2):  # well inside the stalled bodies' 3 s
            response = await client.post(normal.path, content=normal.body, headers=normal.headers)
        assert response.json() == {"status": "ok", "published": 1}
        assert not any(task.done() for task in slow)  # all 50 still held open meanwhile
        assert [status for status, _ in await asyncio.gather(*slow)] == [408] * 50
    assert await stream_lengths(redis_default) == [1, 0, 0, 0]


# --- the atheris harness


def test_the_atheris_harness_fuzzes_and_reports() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.fuzz", "--runs", "500", "--target", "stripe"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    (found,) = summary["targets"]
    assert (summary["crashes"], found["target"], found["runs"], found["crashes"]) == (0, "stripe", 500, 0)
    assert found["exec_per_s"] > 0
    assert "INITED" in done.stderr  # libFuzzer's progress went to stderr
