"""Inbound media downloads: Meta's two-step flow (media id → short-lived URL → bytes) and Twilio's
MediaUrl (Basic auth), with size caps and Meta's sha256 check. Used by the voice agent."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis

from charla import constants as c
from charla.errors import PermanentError, TransientError


class MediaGone(PermanentError):
    """The media no longer exists (media ids live 7 days): ask the learner to send it again."""


class MediaTooLarge(PermanentError):
    """Larger than the configured cap: tell the learner the limit."""


class MediaCorrupt(TransientError):
    """The bytes do not match the sha256 WhatsApp announced (a broken transfer): fetch again."""


class MediaAuthError(TransientError):
    """The media host rejected Charla's credentials (HTTP 401: Meta's code 190, an expired or revoked token;
    Twilio's 20003): an operator must renew the token. Transient, retried after `retry_after` like the
    sender's GraphAuthError and TwilioAuthError: Meta keeps media 7 days and Twilio until it is deleted, so a
    note that waits a few minutes is heard once the token is fixed, whereas giving up at once would lose it
    (the learner would have to record it again) even when the operator acts within the minute."""

    retry_after = 30.0

    def __init__(self, provider: str, status: int, code: int | None) -> None:
        super().__init__(f"{provider} media download answered {status} (code {code})")
        self.provider, self.status, self.code = provider, status, code


@dataclass(frozen=True)
class Media:
    content: bytes
    mime_type: str


async def _fetch(http: aiohttp.ClientSession, url: str, *, max_bytes: int, provider: str,
                 headers: dict[str, str] | None = None) -> Media:
    """GET `url` (following redirects), refusing bodies over `max_bytes` before they are read whole."""
    try:
        async with http.get(url, headers=headers, allow_redirects=True) as response:
            if response.status in (404, 410):
                raise MediaGone(f"{url} answered {response.status}")
            if response.status == 401:
                raise MediaAuthError(provider, response.status, _error_code(await response.content.read(65536)))
            if response.status >= 400:
                raise TransientError(f"media download answered {response.status}")
            if response.content_length is not None and response.content_length > max_bytes:
                raise MediaTooLarge(f"media of {response.content_length} bytes exceeds {max_bytes}")
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaTooLarge(f"media exceeds {max_bytes} bytes")
                chunks.append(chunk)
            return Media(b"".join(chunks), response.headers.get("Content-Type", ""))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientError(f"media download failed: {exc!r}") from exc


async def download_meta(http: aiohttp.ClientSession, *, base_url: str, token: str, media_id: str,
                        max_bytes: int) -> Media:
    """`GET /{media-id}` for a URL valid ~5 minutes, then the bytes with the same token; a URL that
    expired in between is fetched anew once."""
    headers = {"Authorization": f"Bearer {token}"}
    for attempt in range(2):
        info = await _fetch(http, f"{base_url.rstrip('/')}/{media_id}", max_bytes=64_000, provider="meta",
                            headers=headers)
        meta = json.loads(info.content)
        size = str(meta.get("file_size") or "")
        if size.isdigit() and int(size) > max_bytes:
            raise MediaTooLarge(f"media of {size} bytes exceeds {max_bytes}")
        try:
            body = await _fetch(http, str(meta.get("url")), max_bytes=max_bytes, provider="meta", headers=headers)
        except MediaGone:
            if attempt:
                raise
            continue  # the short-lived URL expired: ask for a new one
        _check_sha256(body.content, meta.get("sha256"))
        return Media(body.content, str(meta.get("mime_type") or body.mime_type))
    raise MediaGone(media_id)  # pragma: no cover - the loop returns or raises


async def download_twilio(http: aiohttp.ClientSession, *, url: str, account_sid: str, auth_token: str,
                          max_bytes: int) -> Media:
    """Twilio's MediaUrl, with HTTP Basic auth (it redirects to the file; aiohttp drops the credentials
    when the redirect leaves Twilio's host)."""
    basic = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    return await _fetch(http, url, max_bytes=max_bytes, provider="twilio", headers={"Authorization": f"Basic {basic}"})


def _error_code(body: bytes) -> int | None:
    """The error code of an error answer: Meta's `{"error": {"code": 190}}` or Twilio's `{"code": 20003}`."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    error = answer.get("error", answer) if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def _check_sha256(content: bytes, announced: object) -> None:
    if isinstance(announced, str) and announced:
        actual = base64.b64encode(hashlib.sha256(content).digest()).decode()
        if actual != announced and hashlib.sha256(content).hexdigest() != announced:
            raise MediaCorrupt("downloaded media does not match its sha256")


async def keep(redis: Redis, token: str, data: bytes, ttl_s: int = c.MEDIA_TTL_S) -> None:
    """Keep media Charla serves or uploads later under `token` (`out:…` spoken replies, `in:…` console notes,
    `doc:…` data exports), for `ttl_s` seconds."""
    await redis.set(c.MEDIA_KEY.format(token=token), data, ex=ttl_s)


async def kept(redis: Redis, token: str) -> bytes | None:
    """Media kept under `token`, or None once it expired."""
    data = await redis.get(c.MEDIA_KEY.format(token=token))
    return data.encode() if isinstance(data, str) else data


async def drop(redis: Redis, token: str) -> None:
    """Delete media kept under `token` before it expires (an export uploaded to Meta is not needed again)."""
    await redis.delete(c.MEDIA_KEY.format(token=token))
