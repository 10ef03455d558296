"""What the orchestrator's public routes take and answer, for its OpenAPI schema (`/openapi.json`).

The webhook handlers read their raw bytes themselves (signatures cover the exact bytes), so FastAPI cannot
infer their bodies or answers: they are declared here. Keeping the schema honest lets schemathesis check
every answer against it (tests/orchestrator/test_hostile.py).
"""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]

# Charla's own errors are `{"error": "..."}`; FastAPI's (an unknown path, a bad parameter) `{"detail": ...}`.
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}},
          "anyOf": [{"required": ["error"]}, {"required": ["detail"]}]}
_WHY = {400: "Not the provider's event (malformed or too deeply nested JSON; for Stripe, a bad signature)",
        401: "Missing, invalid or repeated signature header",
        404: "Not found, or this provider is not configured",
        408: "The body did not arrive in full within CHARLA_BODY_TIMEOUT_S (the connection is closed)",
        413: "The body is larger than CHARLA_MAX_BODY_BYTES",
        503: "Busy or Redis unavailable, retry later (for health checks: a dependency is down)"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def errors(*statuses: int) -> Responses:
    """The JSON error answers `statuses`, each described."""
    return {status: _json(_ERROR, _WHY[status]) for status in statuses}


def _header(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "description": what, "schema": {"type": "string"}}


def _body(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {media_type: {"schema": schema}}}


HEALTH: Responses = {200: _json({"type": "object", "required": ["status"]}, "PostgreSQL and Redis answer"),
                     **errors(503)}
VERIFY: Responses = {200: _text("text/plain", "The echoed hub.challenge"),
                     403: _text("text/plain", "Wrong verify token")}
WHATSAPP: Responses = {
    200: _json({"type": "object", "required": ["status", "published"],
                "properties": {"status": {"const": "ok"}, "published": {"type": "integer", "minimum": 0}}},
               "Accepted; `published` counts the new messages, statuses and errors"),
    **errors(400, 401, 408, 413, 503)}
WHATSAPP_REQUEST = {"parameters": [_header("X-Hub-Signature-256", "sha256=<hex HMAC-SHA256 of the body>")],
                    "requestBody": _body("application/json", {"type": "object"})}
TWILIO: Responses = {200: _text("text/xml", "Accepted (empty TwiML: replies go through the API)"),
                     **errors(401, 404, 408, 413, 503)}
TWILIO_REQUEST = {"parameters": [_header("X-Twilio-Signature", "base64 HMAC-SHA1 of the URL and sorted fields")],
                  "requestBody": _body("application/x-www-form-urlencoded",
                                       {"type": "object", "additionalProperties": {"type": "string"}})}
STRIPE: Responses = {200: _json({"type": "object", "required": ["received", "duplicate"]}, "Accepted"),
                     **errors(400, 404, 408, 413, 503)}
STRIPE_REQUEST = {"parameters": [_header("Stripe-Signature", "t=<unix time>,v1=<hex HMAC-SHA256>")],
                  "requestBody": _body("application/json", {"type": "object"})}
METRICS: Responses = {200: _text("text/plain", "Prometheus text exposition"),
                      401: _json(_ERROR, "CHARLA_METRICS_TOKEN is set and the bearer token is missing or wrong")}
MEDIA: Responses = {200: _text("audio/ogg", "A spoken reply, Ogg/Opus"), **errors(404)}
IMAGE: Responses = {200: _text("image/png", "A learner's progress chart"), **errors(404)}
EXPORT: Responses = {200: _text("application/json", "A learner's data export, as a file"), **errors(404)}
