"""Inbound media downloads: Meta's two-step flow (media id → short-lived URL → bytes) and Twilio's
MediaUrl (Basic auth), with size caps and Meta's sha256 check. Used by the voice agent."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis
from yarl import URL

from charla.core import constants as c
from charla.core.errors import PermanentError, TransientError


class MediaGone(PermanentError):
    """The media no longer exists (media ids live 7 days): ask the learner to send it again."""


class MediaRefused(PermanentError):
    """The webhook points at media Charla does not fetch: a host off the allowlist (or a redirect to one), a
    malformed Meta media id. A forged or tampered webhook, answered like media that cannot be had."""


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


MAX_REDIRECTS = 3  # Twilio's MediaUrl redirects once, to signed storage
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
META_MEDIA_ID = re.compile(r"[0-9]{1,32}")


@dataclass(frozen=True)
class Media:
    content: bytes
    mime_type: str


async def _fetch(http: aiohttp.ClientSession, url: str, *, max_bytes: int, provider: str,
                 headers: dict[str, str] | None = None) -> Media:
    """GET `url` (following redirects), refusing bodies over `max_bytes` before they are read whole."""
    answer = await _get(http, url, max_bytes=max_bytes, provider=provider, headers=headers, follow=True)
    if isinstance(answer, URL):  # pragma: no cover - aiohttp follows redirects itself here
        raise TransientError(f"unexpected redirect to {answer.host}")
    return answer


async def _get(http: aiohttp.ClientSession, url: str, *, max_bytes: int, provider: str,
               headers: dict[str, str] | None, follow: bool) -> Media | URL:
    """GET `url`: its body, or (`follow` off) the absolute URL a redirect points to."""
    try:
        async with http.get(url, headers=headers, allow_redirects=follow) as response:
            if not follow and response.status in _REDIRECTS and "Location" in response.headers:
                return response.url.join(URL(response.headers["Location"]))
            if 300 <= response.status < 400:  # a redirect we do not follow (or without Location) is no media
                raise MediaRefused(f"{url} answered {response.status} without a redirect Charla may follow")
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
    if not META_MEDIA_ID.fullmatch(media_id):
        raise MediaRefused(f"not a Meta media id: {media_id[:40]!r}")
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
                          max_bytes: int, api_base_url: str, allowed_hosts: Sequence[str]) -> Media:
    """Twilio's MediaUrl and the redirects to its storage, each only from `allowed_hosts` (MediaRefused
    otherwise, before any request to it). The HTTP Basic credentials go only to the first request, and only
    when it is for the Twilio API's own origin (`api_base_url`); redirects are followed by hand, never with
    them: a forged webhook cannot make Charla hand the account's credentials, or a request, to another host."""
    basic = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"} if _origin(URL(url)) == _origin(URL(api_base_url)) else None
    target = URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        if target.scheme not in ("http", "https") or not host_allowed(target.host, allowed_hosts):
            raise MediaRefused(f"Twilio media on a host that is not allowed: {target.host!r}")
        answer = await _get(http, str(target), max_bytes=max_bytes, provider="twilio", headers=headers, follow=False)
        if isinstance(answer, Media):
            return answer
        target, headers = answer, None
    raise MediaRefused(f"Twilio media redirected more than {MAX_REDIRECTS} times")


def host_allowed(host: str | None, patterns: Iterable[str]) -> bool:
    """Whether `host` is one of `patterns` (`*.example.com` matches any subdomain of example.com)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    return any(host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])) for pattern in patterns)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, (url.host or "").lower(), url.port


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
