"""Builders for signed provider payloads, shaped like the real ones in ../shared/fixtures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from charla.channels.console import signature, text_delivery

# Byte-exact copies of ../shared/fixtures (signatures cover the exact bytes: never reformat them).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APP_SECRET = "test_app_secret"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return signature(body, secret)


def text_webhook(wa_id: str, wamid: str, body: str, name: str = "Learner") -> bytes:
    """A Meta `messages` delivery with one text message, timestamped now (the console builds the same)."""
    return text_delivery(wa_id, body, name=name, message_id=wamid)


def status_webhook(wamid: str, status: str, to: str, tag: str | None) -> bytes:
    """A Meta `statuses` delivery for `wamid` (tagged with `biz_opaque_callback_data` when given), shaped like
    the fixtures and timestamped now."""
    name = "wa_status_failed_131049.json" if status == "failed" else f"wa_status_{status}.json"
    payload = fixture_json(name)
    entry = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry.update(id=wamid, recipient_id=to, timestamp=str(int(time.time())))
    if tag is not None:
        entry["biz_opaque_callback_data"] = tag
    return json.dumps(payload).encode()
