"""The route audit (issue 18): every mounted route of the real app, in every mode, has a declared access
policy (orchestrator.access.RULES) and refuses who it must.

Routes are enumerated from the app itself: FastAPI routes, mounts (/static) and the webhook fast lane's
routes. A route no rule covers fails the audit, so a new route cannot slip through unprotected. Each policy
has one check here, which sends unauthenticated or wrongly signed requests and asserts the refusal expected in
that mode. To change what a policy must do (say, the operator dashboard's login), change its one check.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.routing import Mount

from charla.core.settings import Provider, Settings
from orchestrator.access import Policy, rule_for
from orchestrator.app import create_app
from orchestrator.guard import SESSION_COOKIE
from orchestrator.lane import WebhookLane
from tests.support.helpers import make_settings
from tests.support.payloads import sign, text_webhook

ADMIN, METRICS = "Rt8kq2Zp0Xv7LmN4cW9sYb3Hd6Jf1Ag5Ue8Io2Pr7Tx", "a-metrics-token-of-the-route-audit"
SECRET_KEY = "0f" * 32
COMMON = {"GROQ_API_KEY": "gsk_audit", "STRIPE_SECRET_KEY": "sk_test_audit", "STRIPE_PAYMENT_LINK":
          "https://buy.stripe.com/audit"}
META = {"WHATSAPP_PROVIDER": "meta", "WHATSAPP_APP_SECRET": "meta-app-secret", "WHATSAPP_VERIFY_TOKEN": "verify",
        "WHATSAPP_ACCESS_TOKEN": "EAAG-audit", "WHATSAPP_PHONE_NUMBER_ID": "106540352242922"}
TWILIO = {"WHATSAPP_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "twilio-token",
          "CHARLA_PUBLIC_URL": "https://charla.example.com"}
PRODUCTION = {"CHARLA_ENV": "production", "CHARLA_ADMIN_TOKEN": ADMIN, "CHARLA_SECRET_KEY": SECRET_KEY,
              "STRIPE_WEBHOOK_SECRET": "whsec_audit",
              "CHARLA_METRICS_TOKEN": METRICS, **COMMON}


@dataclass(frozen=True)
class Mode:
    """A deployment mode; `env` is what differs from the bare provider setup."""

    name: str
    env: dict[str, str]

    @property
    def provider(self) -> Provider:
        return make_settings(**self.env).whatsapp_provider

    @property
    def production(self) -> bool:
        return self.env.get("CHARLA_ENV") == "production"


MODES = [
    Mode("console-development", {"WHATSAPP_PROVIDER": "console"}),  # no admin token: the local dashboard
    Mode("meta-development", META),  # no admin token (503), no Stripe secret, /metrics open
    Mode("twilio-development", {**TWILIO, "CHARLA_ADMIN_TOKEN": ADMIN, "STRIPE_WEBHOOK_SECRET": "whsec_audit",
                                "CHARLA_METRICS_TOKEN": METRICS}),
    Mode("meta-production", {**META, **PRODUCTION}),
    Mode("twilio-production", {**TWILIO, **PRODUCTION}),
]


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """Every (path, method) the app serves: its routes, its mounts (as GET), the fast lane's (POST)."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):  # included routers' routes with their prefixes
        if isinstance(route.original_route, Mount):
            found.add((route.original_route.path, "GET"))
        elif route.path is not None and route.methods:
            found |= {(route.path, method) for method in route.methods if method != "HEAD"}
        else:
            raise AssertionError(f"a route of unknown kind: {route.original_route!r}")
    for middleware in app.user_middleware:
        if cast(object, middleware.cls) is WebhookLane:
            found |= {(path, "POST") for path in cast(dict[str, object], middleware.kwargs["routes"])}
    return sorted(found)


SAMPLES = {"learner_id": str(uuid.UUID(int=1)), "broadcast_id": "1", "dead_id": "1-1", "token": "a" * 24}


def concrete(path: str) -> str:
    """A path to request for a route's template (parameters filled in; a mount: one of its files)."""
    if path == "/static":
        return "/static/charla.css"
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLES.get(m.group(1), "x"), path)


@asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        yield app, client


Check = Callable[[Mode, httpx.AsyncClient, str, str], Awaitable[None]]


async def anyone(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    assert (await client.request(method, path)).status_code == 200


async def login(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    """The login flow is open, and a wrong token gets no session."""
    answer = await client.request(method, path, data={"token": "wrong"} if method == "POST" else None)
    off = "CHARLA_ADMIN_TOKEN" not in mode.env and mode.provider != "console"  # the dashboard is off: 503
    assert answer.status_code < 500 or (off and answer.status_code == 503)
    granted = [c for c in answer.headers.get_list("set-cookie") if re.match(rf'{SESSION_COOKIE}=[^";]+', c)]
    assert granted == []


async def foreign(client: httpx.AsyncClient, path: str, method: str) -> None:
    """Browser routes answer only to allowed hosts (DNS rebinding), and change nothing for another site."""
    assert (await client.request(method, path, headers={"host": "evil.example"})).status_code == 400
    if method != "GET":
        cross = await client.request(method, path, headers={"origin": "https://evil.example"})
        assert cross.status_code == 403


async def operator(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    """The dashboard: a wrong token is refused everywhere; without one, a token is required (GET redirects to
    the login, POST 401), or the dashboard is off (503), except for the local console on loopback, where GETs
    are open and POSTs still need the form's CSRF token; never to a foreign Host or another site's form."""
    await foreign(client, path, method)
    assert (await client.request(method, path, headers={"authorization": "Bearer wrong"})).status_code == 401
    answer = await client.request(method, path)
    if "CHARLA_ADMIN_TOKEN" in mode.env:
        expected = (303, "/admin/login") if method == "GET" else (401, None)
        assert (answer.status_code, answer.headers.get("location")) == expected
    elif mode.provider == "console":
        assert answer.status_code == 403 if method != "GET" else answer.status_code not in (401, 403, 503)
    else:
        assert answer.status_code == 503


async def console(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    answer = await client.request(method, path)
    if mode.provider == "console":
        await foreign(client, path, method)
        assert answer.status_code in (200, 422)  # the local console (422: this request named no learner)
    else:
        assert answer.status_code == 404


def _on_or_404(answer: httpx.Response, on: bool, refused: int) -> None:
    assert answer.status_code == (refused if on else 404), answer.text
    if not on:
        assert "set " in answer.json()["error"]  # names what to set


async def meta(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    body = text_webhook("34600000001", "wamid.audit", "forget:yes")
    answer = await client.post(path, content=body, headers={"x-hub-signature-256": sign(body, "not-the-secret")})
    _on_or_404(answer, on=mode.provider in ("meta", "console"), refused=401)


async def meta_handshake(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    answer = await client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "wrong",
                                            "hub.challenge": "1"})
    _on_or_404(answer, on=mode.provider in ("meta", "console"), refused=403)


async def twilio(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    form = urlencode({"MessageSid": "SM1", "From": "whatsapp:+34600000001", "Body": "hola"})
    answer = await client.post(path, content=form, headers={"x-twilio-signature": "forged",
                                                           "content-type": "application/x-www-form-urlencoded"})
    _on_or_404(answer, on=mode.provider == "twilio", refused=401)


async def stripe(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    answer = await client.post(path, content=b"{}", headers={"stripe-signature": "t=1,v1=00"})
    _on_or_404(answer, on="STRIPE_WEBHOOK_SECRET" in mode.env or mode.provider == "console", refused=400)


async def scraper(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    if "CHARLA_METRICS_TOKEN" not in mode.env:
        assert (await client.get(path)).status_code == 200
        return
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": METRICS}):
        answer = await client.get(path, headers=headers)
        assert (answer.status_code, answer.headers.get("www-authenticate")) == (401, "Bearer")
    assert (await client.get(path, headers={"authorization": f"Bearer {METRICS}"})).status_code == 200


async def schema(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    assert (await client.get(path)).status_code == (404 if mode.production else 200)


async def capability(mode: Mode, client: httpx.AsyncClient, path: str, method: str) -> None:
    assert (await client.get(path)).status_code == 404  # a token nobody was given


CHECKS: dict[Policy, Check] = {"anyone": anyone, "login": login, "operator": operator, "console": console,
                               "meta": meta, "meta-handshake": meta_handshake, "twilio": twilio, "stripe": stripe,
                               "scraper": scraper, "schema": schema, "capability": capability}
# Paths that must not answer in any mode, whether or not a route exists for them.
NEVER = ("/docs", "/redoc", "/docs/oauth2-redirect")


def undeclared(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(path, method) for path, method in routes if rule_for(path, method) is None]


def every_route() -> list[tuple[str, str]]:
    """The routes of every mode together: each mode is also checked on the routes it does not mount (the
    console's, outside the console: 404)."""
    return sorted({route for mode in MODES for route in routes_of(create_app(make_settings(**mode.env)))})


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
async def test_every_route_has_a_policy_and_refuses_who_it_must(
        db: str, default_redis_server: str, redis_default: Redis, mode: Mode) -> None:
    settings = make_settings(DATABASE_URL=db, REDIS_URL=default_redis_server, **mode.env)
    async with in_process(settings) as (app, client):
        assert undeclared(routes_of(app)) == [], "mounted routes without an access rule in orchestrator/access.py"
        checked: set[Policy] = set()
        for path, method in every_route():
            rule = rule_for(path, method)
            assert rule is not None
            try:
                await CHECKS[rule.policy](mode, client, concrete(path), method)
            except AssertionError as exc:
                raise AssertionError(f"{method} {path} ({rule.policy}) in {mode.name}: {exc}") from exc
            checked.add(rule.policy)
        for path in NEVER:
            assert (await client.get(path)).status_code == 404, path
    assert checked == set(CHECKS)


def test_a_route_without_a_declared_policy_fails_the_audit() -> None:
    app = create_app(make_settings(WHATSAPP_PROVIDER="console"))

    async def backdoor() -> dict[str, str]:
        return {}

    app.add_api_route("/backdoor", backdoor, methods=["POST"])
    app.add_api_route("/adminx", backdoor, methods=["GET"])  # a prefix is a path segment, not a string prefix
    assert undeclared(routes_of(app)) == [("/adminx", "GET"), ("/backdoor", "POST")]


def test_every_mode_is_audited_and_the_console_is_never_production() -> None:
    assert {(m.provider, m.production) for m in MODES} == {(p, e) for p in ("meta", "twilio") for e in (False, True)
                                                           } | {("console", False)}
    with pytest.raises(ValidationError, match="console"):
        make_settings(**{**PRODUCTION, **META, "WHATSAPP_PROVIDER": "console"})
