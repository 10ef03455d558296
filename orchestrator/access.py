"""Who may call each route, in each mode: the orchestrator's access policy, in one table.

A mode is a provider (console, meta, twilio) and an environment (development, production; the console is
never production). Every mounted route must match a rule here: tests/orchestrator/test_route_audit.py enumerates
the real app's routes in every mode, fails on a route no rule covers, and checks each rule's refusal by sending
unauthenticated or wrongly signed requests. Rules match by path prefix and method; the longest prefix wins.

Webhooks are mounted only when their provider is configured with its own secret (`webhook_off`): the
published development secrets sign nothing but the local console's own deliveries (Settings.dev_secrets).
The decision is taken once, when the app is created, so the webhook fast lane pays nothing per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charla.core.settings import Settings

Policy = Literal["anyone", "login", "operator", "console", "meta", "meta-handshake", "twilio", "stripe",
                 "scraper", "schema", "capability"]
Webhook = Literal["whatsapp", "whatsapp-handshake", "twilio", "stripe"]


@dataclass(frozen=True)
class Rule:
    """Requests to `prefix` (the path itself or below it) with one of `methods` follow `policy`."""

    prefix: str
    methods: frozenset[str]
    policy: Policy
    who: str


def _rule(prefix: str, methods: str, policy: Policy, who: str) -> Rule:
    return Rule(prefix, frozenset(methods.split()), policy, who)


RULES: tuple[Rule, ...] = (
    _rule("/healthz", "GET", "anyone", "anyone (a health probe: up or down, which dependency fails)"),
    _rule("/livez", "GET", "anyone", "anyone (a liveness probe)"),
    _rule("/readyz", "GET", "anyone", "anyone (a readiness probe)"),
    _rule("/static", "GET", "anyone", "anyone (the dashboard's and the console's stylesheets and scripts)"),
    _rule("/media", "GET", "capability",
          "whoever holds the random token of a spoken reply (.ogg), a learner's data export (.json) or progress "
          "chart (.png): Twilio "
          "fetching MediaUrl, the console; tokens expire (24 h, CHARLA_EXPORT_TTL_S)"),
    _rule("/metrics", "GET", "scraper",
          "Prometheus with `Authorization: Bearer CHARLA_METRICS_TOKEN` when it is set (401 otherwise); "
          "anyone who reaches the port when it is unset"),
    _rule("/openapi.json", "GET", "schema", "anyone outside production; 404 in production"),
    _rule("/webhooks/whatsapp", "POST", "meta",
          "Meta, signed with WHATSAPP_APP_SECRET (any provider with it set); the local console, signed with the "
          "development secret (console, development only); 404 otherwise"),
    _rule("/webhooks/whatsapp", "GET", "meta-handshake",
          "Meta's subscription handshake with WHATSAPP_VERIFY_TOKEN, when POST /webhooks/whatsapp is on; 404 "
          "otherwise"),
    _rule("/webhooks/twilio", "POST", "twilio",
          "Twilio, signed with TWILIO_AUTH_TOKEN (also /webhooks/twilio/whatsapp); 404 without the token"),
    _rule("/webhooks/stripe", "POST", "stripe",
          "Stripe, signed with STRIPE_WEBHOOK_SECRET; the console's simulated checkouts (development secret, "
          "console in development only); 404 otherwise"),
    _rule("/console", "GET POST", "console",
          "the local console user, only with WHATSAPP_PROVIDER=console (never production), on an allowed Host, "
          "POSTs from the same origin only; 404 otherwise"),
    _rule("/admin/login", "GET POST", "login", "anyone (the login form; a session only for the right token)"),
    _rule("/admin/logout", "POST", "login", "anyone (ends the caller's own session)"),
    _rule("/admin", "GET POST", "operator",
          "named operators (CHARLA_ADMIN_TOKENS / CHARLA_ADMIN_TOKEN) by Bearer token or login session, on an "
          "allowed Host; forms need a same-origin Origin and their CSRF token (GET without a session: redirect "
          "to /admin/login; POST: 401). Without any token: open to the local user only with the console on a "
          "loopback CHARLA_HOST, 503 elsewhere"),
)


def _covers(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def rule_for(path: str, method: str) -> Rule | None:
    """The most specific rule for `method` on `path` (HEAD is GET's), or None: a route nobody declared."""
    method = "GET" if method == "HEAD" else method
    found = [r for r in RULES if method in r.methods and _covers(r.prefix, path)]
    return max(found, key=lambda r: len(r.prefix), default=None)


def webhook_off(settings: Settings, webhook: Webhook) -> str | None:
    """Why `webhook` is off in this deployment (what to set), or None when it is on."""
    if webhook in ("whatsapp", "whatsapp-handshake") and settings.whatsapp_secret() is None:
        return "Meta webhooks are off: set WHATSAPP_APP_SECRET (and WHATSAPP_VERIFY_TOKEN) and restart"
    if webhook == "whatsapp-handshake" and settings.whatsapp_verify_token is None and not settings.dev_secrets:
        return "Meta's subscription handshake is off: set WHATSAPP_VERIFY_TOKEN and restart"
    if webhook == "twilio" and settings.twilio_auth_token is None:
        return "Twilio webhooks are off: set TWILIO_AUTH_TOKEN and restart"
    if webhook == "stripe" and settings.stripe_signing_secret() is None:
        return "Stripe webhooks are off: set STRIPE_WEBHOOK_SECRET and restart"
    return None
