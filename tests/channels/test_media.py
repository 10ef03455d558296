"""Media downloads against local stand-ins for Meta's media endpoints and Twilio's MediaUrl."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from charla.channels.media import (
    Media,
    MediaAuthError,
    MediaCorrupt,
    MediaGone,
    MediaRefused,
    MediaTooLarge,
    download_meta,
    download_twilio,
)
from tests.support.payloads import fixture_json
from tests.support.servers import serve

VOICE = b"OggS" + bytes(range(256)) * 40
SHA = base64.b64encode(hashlib.sha256(VOICE).digest()).decode()


@dataclass
class FakeMedia:
    base: str = ""
    expire_first: bool = False
    sha256: str = SHA
    url_fetches: int = 0
    file_fetches: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (host, path) of every request
    storage_auth: list[str] = field(default_factory=list)  # Authorization headers the storage received
    redirect_to: str = "/s3/voice"  # where the MediaUrl redirects (a path on this server, or a full URL)

    async def info(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer tok":
            return JSONResponse({"error": {"code": 190}}, status_code=401)
        if request.path_params["media_id"] != "1013859600285441":
            return JSONResponse({"error": {"code": 100, "message": "Unsupported get request"}}, status_code=404)
        self.url_fetches += 1
        answer = fixture_json("wa_media_url_response.json")
        answer |= {"url": f"{self.base}/files/voice?v={self.url_fetches}", "mime_type": "audio/ogg",
                   "sha256": self.sha256, "file_size": str(len(VOICE)), "id": "1013859600285441"}
        return JSONResponse(answer)

    async def file(self, request: Request) -> Response:
        self.file_fetches.append(str(request.url))
        if request.headers.get("authorization") != "Bearer tok":
            return Response(status_code=401)
        if self.expire_first and len(self.file_fetches) == 1:
            return Response(status_code=404)
        return Response(VOICE, media_type="audio/ogg")

    async def twilio(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Basic " + base64.b64encode(b"AC1:tok").decode():
            return Response(status_code=401)
        target = self.redirect_to if "://" in self.redirect_to else f"{self.base}{self.redirect_to}"
        return RedirectResponse(target, status_code=302)

    async def s3(self, request: Request) -> Response:
        self.storage_auth.append(request.headers.get("authorization", ""))
        return Response(VOICE, media_type="audio/ogg")

    async def loop(self, request: Request) -> Response:
        return RedirectResponse(f"{self.base}/loop", status_code=302)


class Recorder:
    """ASGI middleware noting the host and path of every request the fake receives."""

    def __init__(self, app: Starlette, fake: FakeMedia) -> None:
        self.app, self.fake = app, fake

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode()
            self.fake.requests.append((host, scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture
async def media() -> AsyncIterator[tuple[FakeMedia, aiohttp.ClientSession]]:
    fake = FakeMedia()
    app = Starlette(routes=[Route("/v23.0/{media_id}", fake.info), Route("/files/voice", fake.file),
                            Route("/Accounts/AC1/Messages/MM1/Media/ME1", fake.twilio), Route("/s3/voice", fake.s3),
                            Route("/loop", fake.loop)])
    async with serve(Recorder(app, fake)) as url, aiohttp.ClientSession() as http:
        fake.base = url
        yield fake, http


async def meta(fake: FakeMedia, http: aiohttp.ClientSession, media_id: str = "1013859600285441",
               max_bytes: int = 1_000_000) -> bytes:
    got = await download_meta(http, base_url=f"{fake.base}/v23.0", token="tok", media_id=media_id,
                              max_bytes=max_bytes)
    assert got.mime_type == "audio/ogg"
    return got.content


async def test_meta_two_step_download_checks_the_hash(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    assert await meta(*media) == VOICE


async def test_an_expired_url_is_fetched_again(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    fake.expire_first = True
    assert await meta(fake, http) == VOICE
    assert fake.url_fetches == 2


async def test_gone_too_large_and_corrupt_media_are_told_apart(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    with pytest.raises(MediaGone):
        await meta(fake, http, media_id="999")
    with pytest.raises(MediaTooLarge):
        await meta(fake, http, max_bytes=100)
    fake.sha256 = base64.b64encode(b"x" * 32).decode()
    with pytest.raises(MediaCorrupt):
        await meta(fake, http)


async def twilio(fake: FakeMedia, http: aiohttp.ClientSession, url: str | None = None, auth_token: str = "tok",  # noqa: S107
                 allowed: tuple[str, ...] = ("127.0.0.1",)) -> Media:
    """download_twilio as the voice agent calls it, the fake standing for api.twilio.com (TWILIO_API_BASE_URL)."""
    return await download_twilio(http, url=url or f"{fake.base}/Accounts/AC1/Messages/MM1/Media/ME1",
                                 account_sid="AC1", auth_token=auth_token, max_bytes=1_000_000,
                                 api_base_url=fake.base, allowed_hosts=allowed)


def on_localhost(fake: FakeMedia, path: str) -> str:
    """The same fake under another host name: another origin, off the allowlist unless added."""
    return f"{fake.base.replace('127.0.0.1', 'localhost')}{path}"


async def test_twilio_media_url_with_basic_auth_and_redirect(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    assert (await twilio(fake, http)).content == VOICE
    assert fake.storage_auth == [""], "the credentials are not forwarded on the redirect, even to the same host"
    fake.redirect_to = on_localhost(fake, "/s3/voice")  # storage on another allowed host
    assert (await twilio(fake, http, allowed=("127.0.0.1", "localhost"))).content == VOICE
    assert fake.storage_auth == ["", ""]
    assert fake.requests[-1] == (f"localhost:{fake.base.rsplit(':', 1)[1]}", "/s3/voice")


async def test_twilio_media_on_another_host_is_refused_before_any_request(
        media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    for url in (on_localhost(fake, "/Accounts/AC1/Messages/MM1/Media/ME1"), "file:///etc/passwd",
                "http://[::1]/x", "http://127.0.0.1.evil.example/x"):
        with pytest.raises(MediaRefused, match="not allowed"):
            await twilio(fake, http, url=url)
    assert fake.requests == []


async def test_a_redirect_off_the_allowlist_is_not_followed(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    fake.redirect_to = on_localhost(fake, "/s3/voice")
    with pytest.raises(MediaRefused, match="'localhost'"):
        await twilio(fake, http)
    assert [path for _, path in fake.requests] == ["/Accounts/AC1/Messages/MM1/Media/ME1"]
    assert fake.storage_auth == []
    fake.redirect_to = "/loop"  # endless redirects end after a few hops
    with pytest.raises(MediaRefused, match="more than 3"):
        await twilio(fake, http)


async def test_credentials_go_only_to_the_twilio_api_origin(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    """An allowed host that is not the API's (Twilio's storage) gets the request without the credentials."""
    fake, http = media
    with pytest.raises(MediaAuthError):  # the fake's MediaUrl wants them, so it answers 401
        await twilio(fake, http, url=on_localhost(fake, "/Accounts/AC1/Messages/MM1/Media/ME1"),
                     allowed=("localhost",))
    assert fake.requests
    assert fake.storage_auth == []


async def test_a_malformed_meta_media_id_is_refused_before_any_request(
        media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    for media_id in ("../me", "1013859600285441/../../me", "1?fields=x", "", "1" * 33, "١٢٣"):
        with pytest.raises(MediaRefused):
            await meta(fake, http, media_id=media_id)
    assert fake.requests == []


async def test_rejected_credentials_wait_for_an_operator(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    """A 401 is typed apart from other failures: retried 30 s apart while an operator renews the token."""
    fake, http = media
    with pytest.raises(MediaAuthError) as meta_refused:
        await download_meta(http, base_url=f"{fake.base}/v23.0", token="expired", media_id="1013859600285441",
                            max_bytes=1_000_000)
    with pytest.raises(MediaAuthError) as twilio_refused:
        await twilio(fake, http, auth_token="rotated")
    assert (meta_refused.value.provider, meta_refused.value.code, meta_refused.value.retry_after) == ("meta", 190, 30)
    assert (twilio_refused.value.provider, twilio_refused.value.status) == ("twilio", 401)
