"""A body limit on every route: 413 before more than the limit of the request's path is read.

A declared Content-Length over the limit is refused unread; a chunked body is counted as it streams and cut
off as soon as it passes the limit, so an unauthenticated client cannot make the orchestrator buffer or
spool a large body (a multipart form is otherwise spooled to a temporary file). Starlette's
RequestBodyLimitMiddleware does the counting; this middleware picks its limit by path prefix. It sits inside
the webhook fast lane: webhooks served there never pass through it (the lane's own read_body enforces
CHARLA_MAX_BODY_BYTES, with a deadline).
"""

from __future__ import annotations

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from charla.core.settings import Settings

MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and the form fields next to an uploaded file


def path_limits(settings: Settings) -> dict[str, int]:
    """Limits by path prefix (the longest matching prefix wins); every other path gets CHARLA_MAX_FORM_BYTES."""
    return {"/webhooks/": settings.max_body_bytes, "/console/api/voice": settings.max_media_bytes + MULTIPART_SLACK}


class BodyLimits:
    """Every HTTP request's body limited to its path's limit (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        ordered = sorted(limits.items(), key=lambda item: -len(item[0]))
        self._limited = [(prefix, RequestBodyLimitMiddleware(app, limit)) for prefix, limit in ordered]
        self._default = RequestBodyLimitMiddleware(app, default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limited = next((app for prefix, app in self._limited if path.startswith(prefix)), self._default)
        await limited(scope, receive, send)
