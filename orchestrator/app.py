"""The FastAPI app: health, and the WhatsApp webhook that verifies, parses and publishes."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from charla.channels.media import kept
from charla.channels.meta import webhook as meta
from charla.channels.registry import local_console
from charla.channels.twilio import webhook as twilio_hooks
from charla.core import constants as c
from charla.core import metrics
from charla.core.bus import BacklogFull
from charla.core.events import InboundMessage, Provider
from charla.core.runtime import Resources, consumer_name, heartbeat, open_resources
from charla.core.settings import Settings
from charla.ops import export
from orchestrator import access, admin, admin_login, console, openapi, scrape
from orchestrator.access import Webhook
from orchestrator.deps import Res
from orchestrator.guard import BrowserGuard, hostname
from orchestrator.lane import Handler, WebhookLane, redis_unavailable
from orchestrator.limits import BodyLimits, path_limits
from payments import webhook as stripe_events

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class BodyRefused(Exception):
    """A request body not taken (413 too large, 408 too slow), answered with a JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> JSONResponse:
        # After a 408 the connection is closed, or a dribbling client would keep it; not after a 413: that
        # client is still sending, and closing on unread bytes resets the connection before it reads the answer.
        close = {"Connection": "close"} if self.status == 408 else None
        return JSONResponse({"error": self.message}, status_code=self.status, headers=close)


def create_app(settings: Settings) -> FastAPI:
    """The orchestrator app; its clients open in the lifespan and live on `app.state.res`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, pool_size=2) as res:
            app.state.res = res
            closing = asyncio.Event()
            beat = asyncio.create_task(heartbeat(res.redis, "orchestrator", consumer_name("orchestrator"),
                                                 settings.heartbeat_s, dict, closing))
            yield
            closing.set()
            await beat

    # /docs and /redoc would load Swagger UI from a CDN (blank offline): off. The schema: not in production.
    app = FastAPI(title="Charla orchestrator", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None if settings.env == "production" else "/openapi.json",
                  # Forms take no file unless their route says so (the console's voice upload), and few fields.
                  form_limits={"max_files": 0, "max_fields": 32})
    app.add_api_route("/healthz", healthz, methods=["GET"], responses=openapi.HEALTH)
    app.add_api_route("/livez", livez, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"], responses=openapi.HEALTH)
    lane = add_webhooks(app, settings)
    # Innermost first: the lane answers webhooks before the body limits (it enforces its own), everything
    # else passes both.
    app.add_middleware(BodyLimits, limits=path_limits(settings), default=settings.max_form_bytes)
    app.add_middleware(BrowserGuard, settings=settings)  # Host, Origin and security headers (/admin, /console)
    app.add_middleware(WebhookLane, routes=lane)
    app.add_api_route("/metrics", scrape.metrics_endpoint, methods=["GET"], response_model=None,
                      response_class=Response, responses=openapi.METRICS)
    app.add_api_route("/media/{token}.ogg", media, methods=["GET"], response_model=None, response_class=Response,
                      responses=openapi.MEDIA)
    for extension in export.SERVED:  # a learner's data export, their wordbook's Anki deck and CSV
        app.add_api_route(f"/media/{{token}}.{extension}", _served_file(extension),
                          methods=["GET"], response_model=None, response_class=Response, responses=openapi.EXPORT)
    app.add_api_route("/media/{token}.png", media_image, methods=["GET"], response_model=None,
                      response_class=Response, responses=openapi.IMAGE)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    if local_console(settings):
        app.include_router(console.router())
    app.include_router(admin.router())
    app.add_exception_handler(admin_login.NeedsLogin, admin_login.login_redirect)
    app.add_exception_handler(RedisConnectionError, redis_unavailable)
    app.add_exception_handler(RedisTimeoutError, redis_unavailable)
    return app


def add_webhooks(app: FastAPI, settings: Settings) -> dict[str, Handler]:
    """The webhook routes, each on only when its provider is configured (orchestrator.access.webhook_off);
    an off route answers 404 naming what to set. Returns the fast lane's routes: the webhooks that are on."""
    # Webhook POSTs are timed and counted where they are routed (charla_webhook_*, off ones too): no
    # middleware on other routes. The fast lane (orchestrator/lane.py) serves them; their FastAPI routes
    # describe them.
    twilio_doc: dict[str, Any] = {"response_class": Response, "responses": openapi.TWILIO,
                                  "openapi_extra": openapi.TWILIO_REQUEST}
    webhooks: list[tuple[str, str, Webhook, Callable[..., Awaitable[Response]], dict[str, Any]]] = [
        ("/webhooks/whatsapp", "GET", "whatsapp-handshake", verify_subscription,
         {"response_class": PlainTextResponse, "responses": openapi.VERIFY}),
        ("/webhooks/whatsapp", "POST", "whatsapp", whatsapp_webhook,
         {"responses": openapi.WHATSAPP, "openapi_extra": openapi.WHATSAPP_REQUEST}),
        ("/webhooks/twilio", "POST", "twilio", twilio_webhook, twilio_doc),
        # The same, under the path many Twilio consoles are set up with.
        ("/webhooks/twilio/whatsapp", "POST", "twilio", twilio_webhook, twilio_doc),
        ("/webhooks/stripe", "POST", "stripe", stripe_webhook,
         {"responses": openapi.STRIPE, "openapi_extra": openapi.STRIPE_REQUEST}),
    ]
    lane: dict[str, Handler] = {}
    for path, method, webhook, handler, doc in webhooks:
        reason = access.webhook_off(settings, webhook)
        if reason is not None:
            handler, doc = _off(reason), {"include_in_schema": False}
        if method == "POST":
            handler = lane[path] = metrics.timed_webhook(webhook, handler)
        app.add_api_route(path, handler, methods=[method], response_model=None, **doc)
    return lane


def _off(reason: str) -> Handler:
    async def off(request: Request) -> Response:
        return _error(404, reason)
    return off


async def healthz(res: Res) -> JSONResponse:
    """200 when PostgreSQL and Redis both answer, 503 (naming the failing one) otherwise."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            await res.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    try:
        async with asyncio.timeout(2), res.pool.connection() as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503)


async def livez() -> JSONResponse:
    """200 while the process serves requests; no dependency is checked (a liveness probe)."""
    return JSONResponse({"status": "ok"})


async def readyz(res: Res) -> JSONResponse:
    """Ready for traffic: the same checks as /healthz (PostgreSQL and Redis answer), 503 otherwise."""
    return await healthz(res)


async def verify_subscription(
    res: Res,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    """Meta's GET handshake: echo `hub.challenge` when the verify token matches, 403 otherwise."""
    expected = res.settings.whatsapp_verify_token
    if (mode == "subscribe" and token is not None and challenge is not None and expected is not None
            and hmac.compare_digest(token.encode(), expected.get_secret_value().encode())):
        return PlainTextResponse(challenge)
    return PlainTextResponse("verification failed", status_code=403)


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The raw body, refusing anything over `limit` bytes before reading it all (413), or not received in
    full within `timeout_s` (408: a client that stalls or dribbles the body cannot hold a request forever).

    Only the body has a deadline here. The request line and headers have none: uvicorn's only timer,
    `timeout_keep_alive`, closes idle connections between requests, so a client that never finishes its
    headers keeps its connection until it leaves. The reverse proxy bounds that phase (nginx
    `client_header_timeout`, Caddy `timeouts.read_header`), or uvicorn's `--limit-concurrency` caps the cost.
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await _body(request, limit)
    except TimeoutError:
        raise BodyRefused(408, f"body not received within {timeout_s:g} s") from None


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise BodyRefused(413, f"body larger than {limit} bytes")
        return await request.body()  # the server enforces the declared length
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyRefused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def only_header(request: Request, name: str) -> str | None:
    """A header that must appear once (a signature), else None: two copies are ambiguous (a proxy and the app
    might each check a different one), so a repeated signature is refused like a missing one."""
    values = request.headers.getlist(name)
    return values[0] if len(values) == 1 else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def whatsapp_webhook(request: Request) -> Response:
    """Verify the signature on the raw bytes, publish each learner message once, acknowledge.

    The hot path: no dependency injection, no response model (each costs measurable time per request).
    """
    res: Resources = request.app.state.res
    if (foreign := _rebound(request, res)) is not None:
        return foreign
    try:
        body = await read_body(request, res.settings.max_body_bytes, res.settings.body_timeout_s)
    except BodyRefused as refused:
        return refused.response()
    return await accept_whatsapp(res, body, only_header(request, "x-hub-signature-256"))


def _rebound(request: Request, res: Resources) -> Response | None:
    """With the published development secrets (the local console), webhooks answer only to this machine's
    names: a page that rebinds its own host name to 127.0.0.1 could otherwise sign deliveries with them."""
    if res.settings.dev_secrets and hostname(request.headers.get("host", "")) not in res.settings.allowed_hosts:
        return _error(400, "unknown Host header: the console's development webhooks answer only to this machine")
    return None


async def accept_whatsapp(res: Resources, body: bytes, signature: str | None) -> Response:
    """A WhatsApp delivery's raw bytes and signature header: verify, parse, publish, acknowledge (the local
    console hands its signed deliveries here too)."""
    secret = res.settings.whatsapp_secret()
    if secret is None:
        return _error(404, "Meta webhooks are off: set WHATSAPP_APP_SECRET")
    if not meta.signature_ok(body, signature, secret):
        return _error(401, "missing or invalid X-Hub-Signature-256")
    try:
        payload: Any = meta.load(body)
    except orjson.JSONDecodeError:
        return _error(400, "body is not valid JSON")
    except meta.NotADelivery as exc:
        return _error(400, str(exc))
    provider: Provider = "console" if local_console(res.settings) else "meta"
    try:
        published = await publish_delivery(res, payload, provider)
    except BacklogFull:
        log.error("backlog full: answering 503 so WhatsApp retries later")
        return _error(503, "busy, retry later")
    return Response(orjson.dumps({"status": "ok", "published": published}), media_type="application/json")


async def publish_delivery(res: Resources, payload: Any, provider: Provider) -> int:
    """Publish a delivery's messages, statuses and errors, each once however often it is retried."""
    published = 0
    for notice in meta.system_notices(payload, provider):  # before the messages: they may come from the new number
        published += bool(await res.bus.publish(c.STREAM_INBOUND, notice, dedupe_key=notice.id))
    for message in meta.inbound_messages(payload, provider):
        published += bool(await res.bus.publish(inbound_stream(message), message, dedupe_key=message.id))
    for call in meta.calls(payload, provider):
        published += bool(await res.bus.publish(c.STREAM_INBOUND, call, dedupe_key=call.id))
    for preference in meta.preferences(payload, provider):
        published += bool(await res.bus.publish(c.STREAM_STATUSES, preference, dedupe_key=preference.id))
    for status in meta.statuses(payload, provider):
        published += bool(await res.bus.publish(c.STREAM_STATUSES, status, dedupe_key=status.id))
    for error in meta.errors(payload, provider):
        published += bool(await res.bus.publish(c.STREAM_STATUSES, error))
    for update in meta.platform_notices(payload, provider):
        published += bool(await res.bus.publish(c.STREAM_STATUSES, update, dedupe_key=update.id))
    return published


def inbound_stream(message: InboundMessage) -> str:
    """Voice notes go to the voice agent (it publishes the transcript on the inbound stream), the rest
    straight to the conversation agent, so text never queues behind audio."""
    return c.STREAM_VOICE if message.kind == "audio" else c.STREAM_INBOUND


async def media(token: str, res: Res) -> Response:
    """A spoken reply Charla made (Twilio fetches MediaUrl from here; the console plays it). Tokens are
    random and expire with the audio."""
    data = await kept(res.redis, f"out:{token}") if _TOKEN.fullmatch(token) else None
    if data is None:
        return _error(404, "no such voice note (they expire after 24 hours)")
    return Response(data, media_type="audio/ogg", headers={"Cache-Control": "private, max-age=3600"})


def _served_file(extension: str) -> Callable[[str, Res], Awaitable[Response]]:
    async def serve(token: str, res: Res) -> Response:
        return await media_export(token, res, extension)
    serve.__doc__ = media_export.__doc__
    return serve


async def media_export(token: str, res: Res, extension: str = "json") -> Response:
    """A file sent to a learner: their data export ("send me my data"), their wordbook (Twilio fetches MediaUrl
    from here; the console links it). The random token is the only key, and it expires after CHARLA_EXPORT_TTL_S."""
    data = await kept(res.redis, f"doc:{token}") if _TOKEN.fullmatch(token) else None
    if data is None:
        return _error(404, "no such export (they expire after CHARLA_EXPORT_TTL_S)")
    return Response(data, media_type=export.SERVED[extension][1], headers=export.attachment_headers(extension))


async def media_image(token: str, res: Res) -> Response:
    """An image Charla sent (the progress chart: Twilio fetches MediaUrl from here, the console shows it)."""
    data = await kept(res.redis, f"img:{token}") if _TOKEN.fullmatch(token) else None
    if data is None:
        return _error(404, "no such image (they expire after CHARLA_EXPORT_TTL_S)")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


def twilio_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio signed: CHARLA_PUBLIC_URL + path (+ query) behind a proxy, else what we received."""
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_url.rstrip('/')}{request.url.path}{query}"


async def twilio_webhook(request: Request) -> Response:
    """Twilio's form-encoded inbound messages and status callbacks, signature-checked, each published once."""
    res: Resources = request.app.state.res
    token = res.settings.twilio_auth_token
    if token is None:
        return _error(404, "Twilio is not configured (TWILIO_AUTH_TOKEN)")
    try:
        body = await read_body(request, res.settings.max_body_bytes, res.settings.body_timeout_s)
    except BodyRefused as refused:
        return refused.response()
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    url = twilio_url(request, res.settings.public_url)
    if not twilio_hooks.signature_ok(url, form, only_header(request, "x-twilio-signature"), token.get_secret_value()):
        return _error(401, "missing or invalid X-Twilio-Signature")
    try:
        if (message := twilio_hooks.inbound_message(form)) is not None:
            await res.bus.publish(inbound_stream(message), message, dedupe_key=message.id)
        elif (status := twilio_hooks.delivery_status(form, request.query_params.get(twilio_hooks.OUTBOUND_PARAM))) \
                is not None:
            await res.bus.publish(c.STREAM_STATUSES, status, dedupe_key=status.id)
    except BacklogFull:
        return _error(503, "busy, retry later")
    return Response("<Response/>", media_type="text/xml")  # empty TwiML: Charla answers through the API


async def stripe_webhook(request: Request) -> Response:
    """Stripe's signed events (see payments.webhook)."""
    res: Resources = request.app.state.res
    if (foreign := _rebound(request, res)) is not None:
        return foreign
    try:
        body = await read_body(request, res.settings.max_body_bytes, res.settings.body_timeout_s)
    except BodyRefused as refused:
        return refused.response()
    return await stripe_events.receive(res, body, only_header(request, "stripe-signature"))
