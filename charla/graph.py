"""Meta WhatsApp Cloud API (Graph API) client, with its error codes mapped to typed errors."""

from __future__ import annotations

from typing import Any

import httpx

from charla.errors import PermanentError, TransientError

# Graph error codes worth retrying later: throttling and temporary service trouble.
_TRANSIENT_CODES = {1, 2, 4, 17, 80007, 130429, 131000, 131016, 131056, 133004, 135000}
PAIR_RATE_LIMIT = 131056  # too many messages to one recipient: about one per 6 s
WINDOW_CLOSED = 131047  # more than 24 h since the learner last wrote: only templates may go out
# The recipient cannot receive (not on WhatsApp, old app, not an allowed test number, blocked).
UNREACHABLE_CODES = {131026, 131030, 131045}
AUTH_CODES = {190}  # the access token expired or was revoked: an operator must act


class GraphError(Exception):
    """An error answer from the Graph API: `code` is Meta's error code, `status` the HTTP status."""

    def __init__(self, status: int, code: int | None, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"Graph API {status} (code {code}): {message}")
        self.status, self.code, self.details = status, code, details


class GraphTransientError(GraphError, TransientError):
    """Rate limits, 5xx, temporary errors: retry later (after `retry_after` seconds when set)."""

    def __init__(self, status: int, code: int | None, message: str, details: dict[str, Any]) -> None:
        super().__init__(status, code, message, details)
        self.retry_after = 6.0 if code == PAIR_RATE_LIMIT else None


class GraphAuthError(GraphTransientError):
    """The token is expired or revoked. Sends wait (and eventually dead-letter) until an operator fixes it."""

    def __init__(self, status: int, code: int | None, message: str, details: dict[str, Any]) -> None:
        super().__init__(status, code, message, details)
        self.retry_after = 30.0


class GraphPermanentError(GraphError, PermanentError):
    """Rejected for good (bad recipient, closed 24 h window, invalid request): do not retry as is."""


def graph_error(response: httpx.Response) -> GraphError:
    """The typed error for a non-2xx Graph answer."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    message = str(error.get("message") or response.reason_phrase)
    if code in AUTH_CODES or response.status_code == 401:
        return GraphAuthError(response.status_code, code, message, error)
    transient = response.status_code >= 500 or response.status_code == 429 or code in _TRANSIENT_CODES
    cls = GraphTransientError if transient else GraphPermanentError
    return cls(response.status_code, code, message, error)


class GraphClient:
    """Sends messages as one WhatsApp business number."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, token: str, phone_number_id: str) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def send_text(self, to: str, body: str, *, reply_to: str | None = None, tag: str | None = None) -> str:
        """Send a text message; returns the new message's wamid. `tag` comes back on its statuses."""
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                   "type": "text", "text": {"preview_url": False, "body": body}}
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return await self._send(payload, tag)

    async def send_template(self, to: str, name: str, language: str, *, body_params: list[str] | None = None,
                            tag: str | None = None) -> str:
        """Send an approved template (the only thing allowed outside the 24-hour window)."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if body_params:
            template["components"] = [{"type": "body", "parameters": [
                {"type": "text", "text": text} for text in body_params]}]
        return await self._send({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                 "type": "template", "template": template}, tag)

    async def mark_read(self, message_id: str, *, typing: bool = True) -> None:
        """Blue ticks for `message_id`, and "typing…" for up to 25 s or until the reply arrives."""
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        await self._post(payload)

    async def _send(self, payload: dict[str, Any], tag: str | None) -> str:
        if tag:
            payload["biz_opaque_callback_data"] = tag
        messages = (await self._post(payload)).get("messages") or [{}]
        wamid = messages[0].get("id")
        if not wamid:
            raise GraphTransientError(200, None, "answer carried no message id", {})
        return str(wamid)

    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(self._url, json=payload, headers=self._headers)
        except httpx.TransportError as exc:
            raise GraphTransientError(0, None, f"network error: {exc!r}", {}) from exc
        if response.is_error:
            raise graph_error(response)
        answer = response.json()
        return answer if isinstance(answer, dict) else {}
