"""Builders for signed provider payloads, shaped like the real ones in ../shared/fixtures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from charla.console import signature

# Byte-exact copies of ../shared/fixtures (signatures cover the exact bytes: never reformat them).
FIXTURES = Path(__file__).resolve().parent / "fixtures"
APP_SECRET = "test_app_secret"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return signature(body, secret)


def text_webhook(wa_id: str, wamid: str, body: str, name: str = "Learner") -> bytes:
    """A Meta `messages` delivery with one text message."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": body}}]}}]}]}
    return json.dumps(payload).encode()
