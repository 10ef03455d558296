"""The Python peer of the ingest benchmark: pywa's own FastAPI webhook route with signature validation on.

Usage: python -m bench.pywa_peer PORT [async|sync]  (uvicorn with uvloop + httptools, access log off, like
`charla serve`). `async` uses `pywa_async.WhatsApp` (handlers on the event loop), `sync` `pywa.WhatsApp`
(handlers in the threadpool). pywa validates X-Hub-Signature-256 and answers 200 before parsing: the update
is parsed, deduplicated (in memory) and dispatched to the no-op handler in a background task afterwards.
A dummy token is set (pywa only builds an httpx client with it) and no callback URL is registered, so
nothing reaches the internet: the benchmark never asks pywa to send.

GET /bench/stats reports how many messages the handler saw and whether validation is on.
"""

from __future__ import annotations

import sys
from typing import Literal, cast

import uvicorn
from fastapi import FastAPI
from pywa.client import WhatsApp
from pywa.types.message import Message

from tests.support.payloads import APP_SECRET

PHONE_ID = "106540352242922"  # tests.support.payloads.text_webhook's metadata.phone_number_id: not filtered out
WEBHOOK_PATH = "/webhooks/whatsapp"
VERIFY_TOKEN = "bench-verify-token"
Variant = Literal["async", "sync"]


def sync_client(app: FastAPI, seen: list[str]) -> WhatsApp:
    """`pywa.WhatsApp` on `app`: validation on, no callback URL, a no-op handler run in the threadpool."""
    from pywa.handlers import MessageHandler

    def on_message(_: WhatsApp, message: Message) -> None:
        seen.append(message.id)  # list.append is atomic under the GIL

    wa = WhatsApp(phone_id=PHONE_ID, token="bench-token", server=app, webhook_endpoint=WEBHOOK_PATH,
                  verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, validate_updates=True, filter_updates=True,
                  skip_duplicate_updates=True, callback_url=None)
    wa.add_handlers(MessageHandler(on_message))
    return wa


def async_client(app: FastAPI, seen: list[str]) -> WhatsApp:
    """`pywa_async.WhatsApp` on `app`: validation on, no callback URL, a no-op handler on the event loop."""
    from pywa_async.client import WhatsApp as AsyncWhatsApp
    from pywa_async.handlers import MessageHandler

    async def on_message(_: WhatsApp, message: Message) -> None:  # pywa_async passes its subclasses
        seen.append(message.id)

    wa = AsyncWhatsApp(phone_id=PHONE_ID, token="bench-token", server=app, webhook_endpoint=WEBHOOK_PATH,
                       verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, validate_updates=True,
                       filter_updates=True, skip_duplicate_updates=True, callback_url=None)
    wa.add_handlers(MessageHandler(on_message))
    return wa


def create_app(variant: Variant) -> FastAPI:
    """A FastAPI app whose webhook route pywa registers, plus /bench/stats."""
    app = FastAPI()
    seen: list[str] = []
    wa = async_client(app, seen) if variant == "async" else sync_client(app, seen)

    @app.get("/bench/stats")
    async def stats() -> dict[str, object]:
        """Messages handled so far and the validation settings pywa ended up with."""
        return {"messages": len(seen), "validate_updates": wa._validate_updates,
                "app_secret_set": wa._app_secret is not None, "pywa_class": f"{type(wa).__module__}.WhatsApp"}

    return app


def main(argv: list[str]) -> None:
    """Serve the app on 127.0.0.1:PORT until SIGTERM."""
    variant = cast(Variant, argv[1] if len(argv) > 1 else "async")
    uvicorn.run(create_app(variant), host="127.0.0.1", port=int(argv[0]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
