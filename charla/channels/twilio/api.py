"""Twilio's WhatsApp send API and Content API through the official `twilio` SDK (async client), errors typed
by code."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from charla.channels.twilio.webhook import OUTBOUND_PARAM
from charla.core import metrics
from charla.core.errors import AuthError, PermanentError, TransientError

WINDOW_CLOSED = 63016  # free-form message outside the 24-hour window
UNREACHABLE_CODES = {21211, 21614, 63003, 63024}  # invalid number, not a WhatsApp user, unknown channel address
AUTH_CODES = {20003}
_TRANSIENT_CODES = {20429, 63018, 63038}  # rate limits, daily limits
CONTENT_GONE_CODES = {21655, 92006}  # a ContentSid Twilio does not know (e.g. deleted in the console)


class TwilioError(Exception):
    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Twilio {status} (code {code}): {message}")
        self.status, self.code = status, code


class TwilioTransientError(TwilioError, TransientError):
    """Throttled or temporarily failing: retry later."""


class TwilioAuthError(TwilioTransientError, AuthError):
    """Credentials rejected: an operator must act; sends wait meanwhile."""

    retry_after = 30.0


class TwilioPermanentError(TwilioError, PermanentError):
    """Rejected for good (bad recipient, closed window, invalid request)."""


def twilio_error(exc: TwilioRestException) -> TwilioError:
    code = exc.code if isinstance(exc.code, int) else None
    if code in AUTH_CODES or exc.status == 401:
        return TwilioAuthError(exc.status, code, exc.msg)
    if exc.status >= 500 or exc.status == 429 or code in _TRANSIENT_CODES:
        return TwilioTransientError(exc.status, code, exc.msg)
    return TwilioPermanentError(exc.status, code, exc.msg)


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's async client, sending JSON bodies as JSON: as shipped it hands every body to aiohttp as form
    fields, so the Content API got `types=twilio%2Ftext` (twilio-python#932; the sync client gets it right).
    Credentials go in the Authorization header (aiohttp deprecates its `auth` parameter and BasicAuth)."""

    async def request(self, method: str, url: str, *args: Any, data: Any = None,
                      headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None,
                      **kwargs: Any) -> Any:
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        if headers.get("Content-Type") == "application/json" and isinstance(data, dict):
            data = json.dumps(data).encode()
        return await super().request(method, url, *args, data=data, headers=headers, **kwargs)


class TwilioClient:
    """Sends WhatsApp messages from one Twilio number (`whatsapp:+…`) and creates the Content API resources
    its buttons and lists need. Open inside a running event loop."""

    def __init__(self, *, account_sid: str, auth_token: str, base_url: str, from_number: str | None,
                 status_callback: str | None, content_base_url: str = "https://content.twilio.com") -> None:
        self._client = Client(account_sid, auth_token, http_client=_HttpClient())
        self._client.api.base_url = base_url.rstrip("/")
        self._client.content.base_url = content_base_url.rstrip("/")
        self._from, self._callback = from_number, status_callback

    async def send_text(self, to: str, body: str, *, sender: str | None = None, tag: str | None = None) -> str:
        """Send a text; `sender` is the number the learner wrote to (else TWILIO_WHATSAPP_FROM), `tag` (Charla's
        outbound id) comes back in the status callback's URL."""
        return await self._create(to, sender, tag, body=body)

    async def send_media(self, to: str, url: str, *, body: str = "", sender: str | None = None,
                         tag: str | None = None) -> str:
        """Send media Twilio fetches from `url` (a voice note or a data export Charla serves at
        CHARLA_PUBLIC_URL/media/…), with `body` as its text when given."""
        fields: dict[str, Any] = {"media_url": [url], **({"body": body} if body else {})}
        return await self._create(to, sender, tag, **fields)

    async def send_template(self, to: str, content_sid: str, *, sender: str | None = None,
                            tag: str | None = None) -> str:
        """Send an approved template by its Content SID (HX…), the only thing allowed outside the window."""
        return await self._create(to, sender, tag, content_sid=content_sid)

    async def send_content(self, to: str, content_sid: str, variables: dict[str, str], *,
                           sender: str | None = None, tag: str | None = None) -> str:
        """Send content (HX…) with its `{{n}}` variables filled in (session content: inside the window)."""
        return await self._create(to, sender, tag, content_sid=content_sid, content_variables=json.dumps(variables))

    async def create_content(self, friendly_name: str, language: str, types: dict[str, Any],
                             variables: dict[str, str]) -> str:
        """Create a Content API resource (`POST /v1/Content`) with these `types` ({"twilio/quick-reply": …});
        returns its SID (HX…). `variables` are the defaults for variables a send leaves out."""
        request = ContentList.ContentCreateRequest({"friendly_name": friendly_name, "language": language,
                                                    "variables": variables, "types": types})
        content = await _call("content", self._client.content.v1.contents.create_async(request))
        return str(content.sid)

    async def _create(self, to: str, sender: str | None, tag: str | None, **fields: Any) -> str:
        from_ = sender or self._from
        if not from_:
            raise PermanentError("no Twilio sender number: set TWILIO_WHATSAPP_FROM")
        if self._callback:  # Twilio's callbacks name only its own SID: the URL carries Charla's id back
            query = f"?{urlencode({OUTBOUND_PARAM: tag})}" if tag else ""
            fields["status_callback"] = f"{self._callback}{query}"
        message = await _call("send", self._client.messages.create_async(to=to, from_=from_, **fields))
        return str(message.sid)

    async def aclose(self) -> None:
        await self._client.http_client.close()


async def _call(operation: str, call: Awaitable[Any]) -> Any:
    """Await an SDK call, timed, with its errors typed."""
    with metrics.provider_call("twilio", operation):
        try:
            return await call
        except TwilioRestException as exc:
            raise twilio_error(exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TwilioTransientError(0, None, f"network error: {exc!r}") from exc
