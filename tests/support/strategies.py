"""Hypothesis strategies for hostile input: real provider payloads mutated structurally (keys dropped, types
changed, wrong and deep nesting, huge and odd strings), hostile Twilio forms, and text with lone surrogates."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.support.payloads import fixture_json

HOSTILE_TEXT = st.one_of(st.text(max_size=40), st.sampled_from([
    "", " ", "²", "١٢٣", "0", "-1", "1e9", "99999999999999999999", "1" * 5000, "\x00", "\u202e", "🇪🇸" * 2000,
    "x" * 100_000, "null", "whatsapp:", "received", "undelivered", "audio/ogg", "http://[::1"]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8)


def nested(value: Any, depth: int) -> Any:
    """`value` inside `depth` lists."""
    for _ in range(depth):
        value = [value]
    return value


def _mutate(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one thing changed somewhere inside: a key dropped, or a value replaced, re-typed or
    re-nested (copies: the fixture itself is never changed)."""
    if isinstance(value, dict) and value and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        if draw(st.integers(0, 4)) == 0:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _mutate(draw, value[key])}
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], _mutate(draw, value[index]), *value[index + 1:]]
    # 100 levels: past the edge's limit (64), and shallow enough for hypothesis to print the example (its
    # pretty-printer overflowed the recursion limit at 300); the 300-level case has its own tests
    return draw(st.one_of(JSON_VALUES, st.just([value]), st.just({"value": value}), st.just([value, value]),
                          st.just(nested(value, 100))))


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` after one to six structural mutations."""
    for _ in range(draw(st.integers(1, 6))):
        value = _mutate(draw, value)
    return value


TWILIO_FORM = {k: str(v) for k, v in fixture_json("twilio_wa_inbound_text.json").items()}
TWILIO_FIELDS = st.sampled_from(["MessageSid", "SmsMessageSid", "From", "To", "WaId", "ProfileName", "Body",
                                 "NumMedia", "MediaUrl0", "MediaContentType0", "MessageType", "ButtonPayload",
                                 "ButtonText", "MessageStatus", "SmsStatus", "ErrorCode", "ErrorMessage"])


@st.composite
def twilio_forms(draw: st.DrawFn) -> dict[str, str]:
    """The real inbound form with fields dropped, and known or unknown fields set to hostile values."""
    form = {k: v for k, v in TWILIO_FORM.items() if draw(st.integers(0, 4))}
    return form | draw(st.dictionaries(TWILIO_FIELDS | st.text(max_size=10), HOSTILE_TEXT, max_size=6))


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


META_FIXTURES = sorted(fixture_json("wa_signature_vectors.json")["computed_for_fixture_files"]["files"])
STRIPE_FIXTURES = sorted(fixture_json("stripe_signature_vectors.json")["computed_for_fixture_files"]["files"])
META_DELIVERIES = st.sampled_from([fixture_json(n) for n in META_FIXTURES]).flatmap(mutated)
STRIPE_EVENTS = st.sampled_from([fixture_json(n) for n in STRIPE_FIXTURES]).flatmap(mutated)
# Any text: lone surrogates and the characters the chunker treats specially come up often.
TEXT = st.text(st.characters(codec=None, exclude_categories=())
               | st.sampled_from(["\ud83d", "\ude00", "\udc80", "\u0301", "\u200d", "*", "_", "~", "\n", " ", "."]))
