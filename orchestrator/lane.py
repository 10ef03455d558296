"""The webhook fast lane: an ASGI middleware that hands webhook POSTs straight to their handlers.

Webhooks are the hot path. Behind FastAPI's own middleware (exceptions, body limit, exit stack), its router
and its request handling (dependency solving, parameter parsing), a webhook spent more time in the
framework than in its own work: verifying, parsing and publishing. The handlers already take the raw
`Request` and answer a `Response`, so the lane calls them directly, and answers Redis outages with 503 as
the app's exception handler does. Anything else a handler raises still reaches Starlette's error middleware
(500). Every other request goes through FastAPI, whose routes for these paths stay registered: they are
what /openapi.json describes, and they answer identically. A webhook whose provider is not configured is
in the lane too, as a 404 naming what to set (orchestrator.access.webhook_off, decided at app creation).
With batched publishes (charla.core.bus), ingest went from 0.33× to 0.67× a bare FastAPI endpoint's requests/s
(`python -m bench --only ingest`, 2 cores).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


async def redis_unavailable(request: Request, exc: Exception) -> Response:
    """Redis is down or restarting: nothing was acknowledged, so say 503 and the provider delivers again
    (whatever was published before the failure is deduplicated then)."""
    log.error("Redis unavailable (%s): answering 503 so the sender retries", type(exc).__name__)
    return JSONResponse({"error": "temporarily unavailable, retry later"}, status_code=503,
                        headers={"Retry-After": "1"})


class WebhookLane:
    """POSTs to the paths in `routes` go to their handler; everything else to `app`."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Handler]) -> None:
        self.app, self.routes = app, dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            response = await redis_unavailable(request, exc)
        await response(scope, receive, send)
