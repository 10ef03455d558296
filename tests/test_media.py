"""Media downloads against local stand-ins for Meta's media endpoints and Twilio's MediaUrl."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from charla.channels.media import MediaAuthError, MediaCorrupt, MediaGone, MediaTooLarge, download_meta, download_twilio
from tests.payloads import fixture_json
from tests.servers import serve

VOICE = b"OggS" + bytes(range(256)) * 40
SHA = base64.b64encode(hashlib.sha256(VOICE).digest()).decode()


@dataclass
class FakeMedia:
    base: str = ""
    expire_first: bool = False
    sha256: str = SHA
    url_fetches: int = 0
    file_fetches: list[str] = field(default_factory=list)

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
        return RedirectResponse(f"{self.base}/s3/voice", status_code=302)

    async def s3(self, request: Request) -> Response:
        return Response(VOICE, media_type="audio/ogg")


@pytest.fixture
async def media() -> AsyncIterator[tuple[FakeMedia, aiohttp.ClientSession]]:
    fake = FakeMedia()
    app = Starlette(routes=[Route("/v23.0/{media_id}", fake.info), Route("/files/voice", fake.file),
                            Route("/Accounts/AC1/Messages/MM1/Media/ME1", fake.twilio), Route("/s3/voice", fake.s3)])
    async with serve(app) as url, aiohttp.ClientSession() as http:
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


async def test_twilio_media_url_with_basic_auth_and_redirect(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    fake, http = media
    got = await download_twilio(http, url=f"{fake.base}/Accounts/AC1/Messages/MM1/Media/ME1", account_sid="AC1",
                                auth_token="tok", max_bytes=1_000_000)
    assert got.content == VOICE


async def test_rejected_credentials_wait_for_an_operator(media: tuple[FakeMedia, aiohttp.ClientSession]) -> None:
    """A 401 is typed apart from other failures: retried 30 s apart while an operator renews the token."""
    fake, http = media
    with pytest.raises(MediaAuthError) as meta_refused:
        await download_meta(http, base_url=f"{fake.base}/v23.0", token="expired", media_id="1013859600285441",
                            max_bytes=1_000_000)
    with pytest.raises(MediaAuthError) as twilio_refused:
        await download_twilio(http, url=f"{fake.base}/Accounts/AC1/Messages/MM1/Media/ME1", account_sid="AC1",
                              auth_token="rotated", max_bytes=1_000_000)
    assert (meta_refused.value.provider, meta_refused.value.code, meta_refused.value.retry_after) == ("meta", 190, 30)
    assert (twilio_refused.value.provider, twilio_refused.value.status) == ("twilio", 401)
