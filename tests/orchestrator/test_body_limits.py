"""Body limits on every route (issue 18, finding 4): a large body is refused early, never buffered or spooled."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from charla.core.settings import Settings
from orchestrator.app import create_app
from tests.support.helpers import make_settings

MIB = 1024 * 1024


@asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app driven in process (ASGI), its lifespan run: the request body is pulled only as the app
    reads it, so what the app consumed can be counted."""
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        yield client


class Generated:
    """`total` bytes of a multipart form made on the fly, counting how many were pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = b'--x\r\nContent-Disposition: form-data; name="token"\r\n\r\n'
        self.sent += len(head)
        yield head
        block = b"\0" * self.chunk
        while self.sent < self.total:
            self.sent += len(block)
            yield block


def settings_for(db: str, redis_url: str, **extra: str) -> Settings:
    return make_settings(DATABASE_URL=db, REDIS_URL=redis_url, CHARLA_ADMIN_TOKEN="a-token", **extra)


def spooled() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir()}


async def test_a_300_mb_form_to_the_login_is_cut_off_early_and_nothing_is_spooled(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    body, before = Generated(300 * MIB), spooled()
    async with in_process(settings_for(db, default_redis_server)) as client:
        answer = await client.post("/admin/login", content=body,
                                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 413
    assert body.sent < 256 * 1024  # the 64 KiB limit plus at most a few chunks in flight
    assert spooled() - before == set()


async def test_a_declared_length_over_the_limit_is_refused_unread(
        db: str, default_redis_server: str, redis_default: Redis) -> None:
    body = Generated(300 * MIB)
    async with in_process(settings_for(db, default_redis_server, CHARLA_MAX_FORM_BYTES="1000")) as client:
        answer = await client.post("/admin/learners/00000000-0000-0000-0000-000000000000/delete", content=body,
                                   headers={"content-type": "application/x-www-form-urlencoded",
                                            "content-length": str(300 * MIB), "authorization": "Bearer a-token"})
        small = await client.post("/admin/login", data={"token": "wrong"})
    assert answer.status_code == 413
    assert body.sent == 0
    assert small.status_code == 303  # a form under the limit still works


async def test_forms_take_no_files(db: str, default_redis_server: str, redis_default: Redis) -> None:
    async with in_process(settings_for(db, default_redis_server)) as client:
        answer = await client.post("/admin/login", files={"token": ("t.txt", b"a-token")})
    assert answer.status_code == 400
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize(("size", "status"), [(200 * 1024, 200), (3 * MIB, 413)])
async def test_the_console_voice_upload_has_the_media_limit(db: str, default_redis_server: str,
                                                            redis_default: Redis, size: int, status: int) -> None:
    """Bigger than the form limit is fine for a voice note; over CHARLA_MAX_MEDIA_BYTES is cut off."""
    settings = settings_for(db, default_redis_server, WHATSAPP_PROVIDER="console", CHARLA_MAX_MEDIA_BYTES=str(MIB))
    async with in_process(settings) as client:
        answer = await client.post("/console/api/voice", data={"learner": "ana"},
                                   files={"file": ("n.ogg", b"\0" * size, "audio/ogg")})
    assert answer.status_code == status
