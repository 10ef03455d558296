"""One function per fuzzed parser, from raw bytes: it returns, or raises one of the parser's typed errors
(`EXPECTED`); anything else is a defect. Shared by the atheris harness (bench/fuzz.py, which imports this
module under instrumentation) and by the hypothesis tests (tests/orchestrator/test_hostile.py).

Inputs are `header line` + `\\n` + `body`, as the webhook routes see them. A header line of `!` means "sign
the body properly", so the fuzzer also reaches the code behind each signature check.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
import regex
import stripe
from pydantic import BaseModel
from twilio.request_validator import RequestValidator

from charla.channels.chunking import split_text, utf16_len
from charla.channels.meta import webhook as meta_hooks
from charla.channels.twilio import webhook as twilio_hooks
from payments import webhook as stripe_hooks
from payments.ledger import subscription_of

APP_SECRET = "test_app_secret"  # the fixtures' secrets (tests/fixtures/README.md)
TWILIO_TOKEN = "test_auth_token_0123456789abcdef"
TWILIO_URL = "https://example.com/webhooks/twilio/whatsapp"
STRIPE_SECRET = "whsec_test_secret"
SIGN = b"!"
_CLUSTER = regex.compile(r"\X", regex.DOTALL)


class FuzzFailure(Exception):
    """A parser broke one of its promises without raising (e.g. a part of a split text was lost)."""


def split(data: bytes) -> tuple[bytes, bytes]:
    """(header line, body) of a fuzz input."""
    header, _, body = data.partition(b"\n")
    return header, body


def _encoded(events: Iterable[BaseModel | None]) -> int:
    """Encode each event as the bus does (a value the bus cannot carry would fail the webhook there); none may
    carry a NUL character, which PostgreSQL refuses (the learner's turn would fail until dead-lettered)."""
    size = 0
    for event in events:
        encoded = event.model_dump_json() if event is not None else ""
        if "\\u0000" in encoded:
            raise FuzzFailure(f"a NUL character would reach PostgreSQL: {encoded[:200]}")
        size += len(encoded)
    return size


def meta_delivery(payload: Any) -> int:
    """Every parser of a Meta delivery as meta.load decoded it; the size of what would be published."""
    return _encoded([*meta_hooks.inbound_messages(payload), *meta_hooks.statuses(payload),
                     *meta_hooks.errors(payload)])


def meta(data: bytes) -> None:
    """A Meta webhook: signature check on the raw bytes, JSON, the parsers. Raises orjson.JSONDecodeError."""
    header, body = split(data)
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    given = f"sha256={digest}" if header == SIGN else header.decode("latin-1")  # as Starlette decodes headers
    if meta_hooks.signature_ok(body, given, APP_SECRET) != (header == SIGN or digest in given.lower()):
        raise FuzzFailure(f"signature_ok is wrong about {given!r}")
    meta_delivery(meta_hooks.load(body))


def twilio_form(form: dict[str, str]) -> int:
    """Both parsers of a Twilio form; the size of what would be published."""
    return _encoded([twilio_hooks.inbound_message(form), twilio_hooks.delivery_status(form)])


def twilio(data: bytes) -> None:
    """A Twilio webhook: header line `URL SIGNATURE`, a form-encoded body decoded as the route does."""
    header, body = split(data)
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    if header == SIGN:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(TWILIO_URL, form)
        if not twilio_hooks.signature_ok(TWILIO_URL, form, signature, TWILIO_TOKEN):
            raise FuzzFailure("a genuine Twilio signature was refused")
    else:
        url, _, signature = header.decode("latin-1").partition(" ")
        twilio_hooks.signature_ok(url, form, signature, TWILIO_TOKEN)
    twilio_form(form)


def stripe_signature(body: bytes, at: int = 1_700_000_000) -> str:
    """`Stripe-Signature` for `body` signed at `at` with the fixtures' endpoint secret."""
    signed = hmac.new(STRIPE_SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={signed}"


def stripe_event(data: bytes) -> None:
    """A Stripe webhook (tolerance off: the fixtures are old). Raises stripe.SignatureVerificationError or
    ValueError (not UTF-8, not JSON, not an event)."""
    header, body = split(data)
    event = stripe_hooks.parse(body, stripe_signature(body) if header == SIGN else header.decode("latin-1"),
                               STRIPE_SECRET, tolerance=None)
    subscription_of(event)
    _encoded([event])


def split_checked(text: str, limit: int) -> list[str]:
    """split_text, checked: the parts join back to the text, and each fits the limit unless it is one grapheme
    cluster longer than it; a limit under 2 is refused (ValueError, then an empty list here)."""
    if limit < 2:
        try:
            split_text(text, limit)
        except ValueError:
            return []
        raise FuzzFailure(f"split_text accepted limit {limit}")
    parts = split_text(text, limit)
    if "".join(parts) != text or not all(parts):
        raise FuzzFailure(f"split_text({text!r}, {limit}) lost or added text: {parts!r}")
    for part in parts:
        if utf16_len(part) > limit and not _CLUSTER.fullmatch(part):
            raise FuzzFailure(f"part {part!r} is longer than {limit} and more than one grapheme cluster")
    return parts


def chunker(data: bytes) -> None:
    """split_checked on any text (undecodable bytes become lone surrogates) and any limit under 512."""
    split_checked(data[2:].decode("utf-8", "surrogateescape"), int.from_bytes(data[:2], "big") % 512)


TARGETS: dict[str, Callable[[bytes], None]] = {"meta": meta, "twilio": twilio, "stripe": stripe_event,
                                               "chunker": chunker}
EXPECTED: dict[str, tuple[type[Exception], ...]] = {
    "meta": (orjson.JSONDecodeError, meta_hooks.NotADelivery),
    "twilio": (),
    "stripe": (stripe.SignatureVerificationError, ValueError),
    "chunker": (),
}
