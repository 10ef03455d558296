"""A local stand-in for Stripe: the Subscriptions API the stripe SDK calls (`STRIPE_API_BASE_URL`), and
signed webhook deliveries built from `../shared/fixtures/stripe_*`."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from charla.channels import console
from tests.support.payloads import fixture_json
from tests.support.servers import serve

WEBHOOK_SECRET = "whsec_test_secret"


def stripe_signature(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """`Stripe-Signature` for `body`, as Stripe computes it (HMAC-SHA256 over "<t>.<body>")."""
    return console.stripe_signature(body, secret, at)


def event(name: str, **changes: Any) -> dict[str, Any]:
    """A fixture event with fields of its `data.object` (or, for `id`/`created`/`type`, itself) replaced."""
    found: dict[str, Any] = copy.deepcopy(fixture_json(name))
    for key, value in changes.items():
        if key in ("id", "created", "type"):
            found[key] = value
        else:
            found["data"]["object"][key] = value
    return found


@dataclass
class FakeStripe:
    updates: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    down: bool = False

    async def update_subscription(self, request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        sub_id = request.path_params["sub_id"]
        self.updates.append((sub_id, form))
        if self.down:
            return JSONResponse({"error": {"type": "api_error", "message": "Stripe is unavailable"}}, status_code=503)
        sub = copy.deepcopy(fixture_json("stripe_customer_subscription_deleted.json")["data"]["object"])
        sub.update(id=sub_id, status="active", cancel_at_period_end=form.get("cancel_at_period_end") == "true")
        return JSONResponse(sub)


@asynccontextmanager
async def serve_fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    app = Starlette(routes=[Route("/v1/subscriptions/{sub_id}", fake.update_subscription, methods=["POST"])])
    async with serve(app) as url:
        yield fake, url


def stripe_env(url: str, **more: str) -> dict[str, str]:
    return {"STRIPE_SECRET_KEY": "sk_test_charla", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_PAYMENT_LINK": "https://buy.stripe.com/test_charla", "STRIPE_API_BASE_URL": url, **more}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
