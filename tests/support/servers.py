"""Local HTTP servers for tests and benchmarks: any ASGI app on loopback, and a fake Graph API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from charla.cli.services import free_port
from tests.support.payloads import fixture_json

# An HTTP status and the JSON body to answer with.
Answer = tuple[int, dict[str, Any]]
# Called with each message send (its JSON body) and the wamid it would get: an error to answer instead, or None.
BeforeAnswer = Callable[[dict[str, Any], str], Awaitable[Answer | None]]


@dataclass(frozen=True)
class Attempt:
    """One message send as the fake saw it: when (monotonic seconds), to whom, and the HTTP status answered."""

    at: float
    to: str
    status: int

GRAPH_TOKEN = "tok"  # the access token FakeGraph accepts for media downloads (as WHATSAPP_ACCESS_TOKEN)


@dataclass
class FakeGraph:
    """Records every send; answers like `wa_send_response.json`, or with scripted errors first (errors
    apply to message sends only; read receipts always succeed). `before_answer` sees each send that would
    succeed, and may answer an error instead or act first (e.g. post status webhooks)."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    reads: list[dict[str, Any]] = field(default_factory=list)  # mark-read (+ typing) requests
    scripted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    fail_at: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # send attempt -> error
    attempts: int = 0  # message sends tried (read receipts not counted)
    log: list[Attempt] = field(default_factory=list)  # every message send tried, in order
    before_answer: BeforeAnswer | None = None
    uploads: list[tuple[str, bytes]] = field(default_factory=list)  # (content type, bytes)
    upload_names: list[tuple[str, str]] = field(default_factory=list)  # (file name, the form's `type` field)
    tokens: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # message ids answered, in order
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media id -> (bytes, mime type) to serve
    expired: set[str] = field(default_factory=set)  # media ids whose download URL answers 404
    media_fetches: list[str] = field(default_factory=list)  # media ids whose bytes were downloaded
    media_token: str = GRAPH_TOKEN  # the token media downloads accept; any other gets 401, code 190 (expired)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])  # ids stay unique across fakes
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def send(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.tokens.append(request.headers.get("authorization", ""))
        if body.get("status") == "read":
            self.reads.append(body)
            return JSONResponse({"success": True})
        self.attempts += 1
        at = time.monotonic()
        error = self.fail_at.get(self.attempts) or (self.scripted.pop(0) if self.scripted else None)
        wamid = f"wamid.fake{self._run}{next(self._ids):08d}" if error is None else ""
        if error is None and self.before_answer is not None:
            error = await self.before_answer(body, wamid)
        self.log.append(Attempt(at, str(body.get("to")), error[0] if error else 200))
        if error is not None:
            return JSONResponse(error[1], status_code=error[0])
        self.ids.append(wamid)
        async with self._changed:
            self.sent.append(body)
            self._changed.notify_all()
        return JSONResponse({"messaging_product": "whatsapp",
                             "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                             "messages": [{"id": wamid}]})

    async def upload(self, request: Request) -> JSONResponse:
        """`POST /{phone-id}/media` (multipart): answers a media id, as Meta does."""
        form = await request.form()
        upload = form["file"]
        if isinstance(upload, str) or form.get("messaging_product") != "whatsapp":
            return JSONResponse({"error": {"code": 100, "message": "Param file must be a file"}}, status_code=400)
        self.uploads.append((upload.content_type or "", await upload.read()))
        self.upload_names.append((upload.filename or "", str(form.get("type") or "")))
        return JSONResponse({"id": "1013859600285441"})

    async def media_info(self, request: Request) -> JSONResponse:
        """`GET /{media-id}`: a short-lived download URL, as in `wa_media_url_response.json`."""
        media_id = request.path_params["media_id"]
        if request.headers.get("authorization") != f"Bearer {self.media_token}":
            return JSONResponse(fixture_json("wa_send_error_expired_token_190.json"), status_code=401)
        if media_id not in self.media:
            return JSONResponse({"error": {"code": 100, "message": "Unsupported get request"}}, status_code=400)
        data, mime = self.media[media_id]
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return JSONResponse(fixture_json("wa_media_url_response.json") | {
            "url": f"{str(request.base_url).rstrip('/')}/files/{media_id}", "mime_type": mime, "sha256": digest,
            "file_size": str(len(data)), "id": media_id})

    async def media_file(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        if media_id in self.expired or media_id not in self.media:
            return Response(status_code=404)
        self.media_fetches.append(media_id)
        data, mime = self.media[media_id]
        return Response(data, media_type=mime)

    async def wait_for(self, count: int, seconds: float) -> None:
        """Return once at least `count` messages were sent; TimeoutError otherwise."""
        await self.wait_until(lambda: len(self.sent) >= count, seconds)

    async def wait_until(self, done: Callable[[], bool], seconds: float) -> None:
        """Return once `done()` holds after a send; TimeoutError otherwise."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(done)

    def replies_to(self) -> list[str]:
        return [str((m.get("context") or {}).get("message_id")) for m in self.sent]

    def echoed(self, to: str | None = None) -> list[str]:
        """The learner lines the fake tutor echoed back (a burst answered at once echoes several lines), from
        text replies and from replies with buttons (a new learner's first one offers the level test)."""
        return [line for m in self.sent if to is None or m["to"] == to
                for line in _echo(m).removeprefix("Echo: ").split("\n")]


def _echo(message: dict[str, Any]) -> str:
    """A sent message's "Echo: …" paragraph (its text, or the body of its buttons)."""
    body = str((message.get("text") or {}).get("body") or (message.get("interactive") or {}).get("body", {}).get("text")
               or "")
    return next((p for p in body.split("\n\n") if p.startswith("Echo: ")), body)


@asynccontextmanager
async def serve(app: ASGIApp, *, lifespan: Literal["on", "off"] = "off", host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port (of `host`, another 127.x address for a second
    origin) in this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan=lifespan, access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:  # uvicorn offers no event to await for this
                if task.done():
                    task.result()
                    raise RuntimeError("server exited during startup")
                await asyncio.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve_fake_graph(fake: FakeGraph | None = None, host: str = "127.0.0.1"
                           ) -> AsyncIterator[tuple[FakeGraph, str]]:
    """Run a FakeGraph (a new one unless given) on a free port of `host` (loopback unless told: 0.0.0.0 for
    containers); yields it and its base URL (like WHATSAPP_API_BASE_URL)."""
    fake = fake or FakeGraph()
    app = Starlette(routes=[Route("/v23.0/{phone_id}/messages", fake.send, methods=["POST"]),
                            Route("/v23.0/{phone_id}/media", fake.upload, methods=["POST"]),
                            Route("/v23.0/{media_id}", fake.media_info, methods=["GET"]),
                            Route("/files/{media_id}", fake.media_file, methods=["GET"])])
    async with serve(app, host=host) as url:
        yield fake, f"{url}/v23.0"


@dataclass
class FakeTwilio:
    """Twilio's Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`), recording what was sent, and
    its inbound media URLs (`GET …/Messages/{message_sid}/Media/{media_sid}`): HTTP Basic auth with the
    account sid and `auth_token` (401 otherwise), 404 for unknown or deleted media, else a 307 to a
    short-lived signed storage URL on another origin (Twilio's is mms.twiliocdn.com), which serves the bytes
    and records any credentials a client leaked to it."""

    sent: list[dict[str, str]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    scripted: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    auth_token: str = ""  # media URLs answer only Basic <account sid>:<auth_token>
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media sid -> (bytes, content type)
    expired: set[str] = field(default_factory=set)  # media sids deleted at Twilio: 404
    media_requests: list[tuple[str, str]] = field(default_factory=list)  # (media sid, Authorization) per GET
    media_fetches: list[str] = field(default_factory=list)  # media sids whose bytes storage served
    leaked: list[str] = field(default_factory=list)  # Authorization headers that reached the storage
    _storage_key: bytes = field(default_factory=lambda: uuid.uuid4().bytes)

    async def create(self, request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.auth.append(request.headers.get("authorization", ""))
        if self.scripted:
            status, error = self.scripted.pop(0)
            return JSONResponse(error, status_code=status)
        sid = f"SM{next(self._ids):032d}"
        async with self._changed:
            self.sent.append(form)
            self._changed.notify_all()
        return JSONResponse({"sid": sid, "account_sid": request.path_params["sid"], "status": "queued",
                             "to": form.get("To"), "from": form.get("From"), "body": form.get("Body"),
                             "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
                             "uri": f"/2010-04-01/Accounts/{request.path_params['sid']}/Messages/{sid}.json"},
                            status_code=201)

    async def wait_for(self, count: int, seconds: float) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)

    async def media_file(self, request: Request) -> Response:
        """A MediaUrl: credentials checked, then redirected to storage valid for 4 hours, as Twilio does."""
        sid, media_sid = request.path_params["sid"], request.path_params["media_sid"]
        given = request.headers.get("authorization", "")
        self.media_requests.append((media_sid, given))
        expected = "Basic " + base64.b64encode(f"{sid}:{self.auth_token}".encode()).decode()
        if not self.auth_token or not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401,
                                 "more_info": "https://www.twilio.com/docs/errors/20003"},
                                status_code=401, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if media_sid in self.expired or media_sid not in self.media:
            return JSONResponse({"code": 20404, "message": f"The requested resource {request.url.path} was not found",
                                 "status": 404, "more_info": "https://www.twilio.com/docs/errors/20404"},
                                status_code=404)
        expires = str(int(time.time()) + 4 * 3600)
        host = "localhost" if request.url.hostname != "localhost" else "127.0.0.1"  # another origin
        storage = request.url.replace(hostname=host, path=f"/storage/{media_sid}",
                                      query=f"Expires={expires}&Signature={self._signed(media_sid, expires)}")
        return RedirectResponse(str(storage), status_code=307)

    async def storage_file(self, request: Request) -> Response:
        """The signed storage URL a MediaUrl redirects to: no credentials needed (nor wanted)."""
        media_sid = request.path_params["media_sid"]
        if leaked := request.headers.get("authorization"):
            self.leaked.append(leaked)
        expires, signature = request.query_params.get("Expires", ""), request.query_params.get("Signature", "")
        valid = hmac.compare_digest(signature.encode(), self._signed(media_sid, expires).encode())
        if not valid or not expires.isdigit() or int(expires) < time.time() or media_sid not in self.media:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", status_code=403, media_type="application/xml")
        self.media_fetches.append(media_sid)
        data, content_type = self.media[media_sid]
        return Response(data, media_type=content_type)

    def _signed(self, media_sid: str, expires: str) -> str:
        return hmac.new(self._storage_key, f"{media_sid}:{expires}".encode(), hashlib.sha256).hexdigest()


@asynccontextmanager
async def serve_fake_twilio(host: str = "127.0.0.1") -> AsyncIterator[tuple[FakeTwilio, str]]:
    """Run a FakeTwilio on `host`; yields it and its base URL (like TWILIO_API_BASE_URL)."""
    fake = FakeTwilio()
    app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", fake.create, methods=["POST"]),
                            Route("/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media/{media_sid}",
                                  fake.media_file, methods=["GET"]),
                            Route("/storage/{media_sid}", fake.storage_file, methods=["GET"])])
    async with serve(app, host=host) as url:
        yield fake, url


@dataclass
class FakeTwilioContent:
    """Twilio's Content API (`POST /v1/Content`, JSON in and out, on its own host like content.twilio.com):
    records each resource created and answers it as Twilio does (201, `sid` HX…); scripted errors first.
    A body that is not a JSON object with a language and at least one content type gets Twilio's 400."""

    created: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    scripted: list[Answer] = field(default_factory=list)
    attempts: int = 0
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    async def create(self, request: Request) -> JSONResponse:
        self.attempts += 1
        self.auth.append(request.headers.get("authorization", ""))
        if self.scripted:
            status, error = self.scripted.pop(0)
            return JSONResponse(error, status_code=status)
        try:
            body = await request.json() if request.headers.get("content-type") == "application/json" else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("language") or not body.get("types"):
            return JSONResponse({"code": 20001, "message": "Invalid types. At least one content type definition "
                                 "is required", "more_info": "https://www.twilio.com/docs/errors/20001",
                                 "status": 400}, status_code=400)
        sid = f"HX{self._run}{len(self.created):024x}"
        self.created.append(body)
        url = f"{str(request.base_url).rstrip('/')}/v1/Content/{sid}"
        account = base64.b64decode(self.auth[-1].removeprefix("Basic ") or b"").decode(errors="replace")
        return JSONResponse({"sid": sid, "account_sid": account.partition(":")[0],
                             "friendly_name": body.get("friendly_name"),
                             "language": body["language"], "variables": body.get("variables") or {},
                             "types": body["types"], "url": url, "date_created": "2025-01-01T00:00:00Z",
                             "date_updated": "2025-01-01T00:00:00Z",
                             "links": {"approval_fetch": f"{url}/ApprovalRequests",
                                       "approval_create": f"{url}/ApprovalRequests/whatsapp"}}, status_code=201)


@asynccontextmanager
async def serve_fake_twilio_content() -> AsyncIterator[tuple[FakeTwilioContent, str]]:
    """Run a FakeTwilioContent; yields it and its base URL (like TWILIO_CONTENT_BASE_URL)."""
    fake = FakeTwilioContent()
    async with serve(Starlette(routes=[Route("/v1/Content", fake.create, methods=["POST"])])) as url:
        yield fake, url
