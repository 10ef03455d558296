"""The browser surfaces' gate: an ASGI middleware in front of the FastAPI app (the webhook fast lane sits
before it, so webhooks never pass through here).

- `/admin` and `/console` answer only to allowed Host names (DNS rebinding: a page on a foreign name that
  resolves to this machine gets 400), and carry the security headers (CSP with `frame-ancestors 'none'`,
  nosniff, Referrer-Policy, X-Frame-Options).
- Every state-changing request (POST, PUT, PATCH, DELETE) whose Origin, or else Referer, names another site
  gets 403. Browsers always send Origin on cross-site POSTs, so a request with neither comes from a
  non-browser client: allowed, unless it carries the dashboard's session cookie without a Bearer token.

Loopback names are allowed on any port (a port mapping changes the port the browser sees, and a rebinding
page cannot pose as `localhost`); the Origin must match the Host the request came to, port included.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charla.core.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SESSION_COOKIE = "charla_admin"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")  # inline styles only: pygal's SVG charts carry <style> and style=""
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


def browser_path(path: str) -> bool:
    """Whether `path` is one of the pages a browser uses (the dashboard, the console)."""
    return any(path == root or path.startswith(f"{root}/") for root in ("/admin", "/console"))


def hostname(netloc: str) -> str | None:
    """The host name of `host[:port]` (lower case, IPv6 without brackets), None when it does not parse."""
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


class BrowserGuard:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.hosts = app, frozenset(settings.allowed_hosts)
        self.public = urlsplit(settings.public_url).netloc.lower() if settings.public_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        browser = browser_path(scope["path"])
        headers = Headers(scope=scope)
        refusal = self.host_refusal(headers) if browser else None
        if refusal is None and scope["method"] not in SAFE_METHODS:
            refusal = self.origin_refusal(headers)
        if refusal is not None:
            status, text = refusal
            await PlainTextResponse(text, status_code=status, headers={k.decode(): v.decode() for k, v in HEADERS}
                                    )(scope, receive, send)
        elif browser:
            await self.app(scope, receive, _with_headers(send))
        else:
            await self.app(scope, receive, send)

    def host_refusal(self, headers: Headers) -> tuple[int, str] | None:
        name = hostname(headers.get("host", ""))
        if name in self.hosts:
            return None
        return 400, ("unknown Host header: the dashboard and console answer only to localhost, the host of "
                     "CHARLA_PUBLIC_URL and CHARLA_ALLOWED_HOSTS")

    def origin_refusal(self, headers: Headers) -> tuple[int, str] | None:
        source = headers.get("origin") or headers.get("referer")
        if source is None:
            return (403, "a browser form must come with its Origin") if _cookie_only(headers) else None
        netloc = urlsplit(source).netloc.lower() if source != "null" else ""
        if netloc and netloc in (headers.get("host", "").lower(), self.public):
            return None
        return 403, "cross-site request refused (its Origin or Referer is another site)"


def _cookie_only(headers: Headers) -> bool:
    """The request carries the dashboard's session cookie and no Bearer token (so the browser added it)."""
    if headers.get("authorization", "").startswith("Bearer "):
        return False
    return SESSION_COOKIE in cookie_parser(headers.get("cookie", ""))


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in present)]
        await send(message)
    return sending
