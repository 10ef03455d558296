"""Meta WhatsApp Cloud API (Graph API) client, with its error codes mapped to typed errors."""

from __future__ import annotations

from typing import Any

import httpx

from charla.errors import PermanentError, TransientError

# Graph error codes worth retrying later: throttling and temporary service trouble.
_TRANSIENT_CODES = {1, 2, 4, 17, 80007, 130429, 131000, 131016, 131056, 133004, 135000}


class GraphError(Exception):
    """An error answer from the Graph API: `code` is Meta's error code, `status` the HTTP status."""

    def __init__(self, status: int, code: int | None, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"Graph API {status} (code {code}): {message}")
        self.status, self.code, self.details = status, code, details


class GraphTransientError(GraphError, TransientError):
    """Rate limits, 5xx, temporary errors: retry later."""


class GraphPermanentError(GraphError, PermanentError):
    """Rejected for good (bad recipient, closed 24 h window, expired token): do not retry as is."""


def graph_error(response: httpx.Response) -> GraphError:
    """The typed error for a non-2xx Graph answer."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    message = str(error.get("message") or response.reason_phrase)
    transient = response.status_code >= 500 or response.status_code == 429 or code in _TRANSIENT_CODES
    cls = GraphTransientError if transient else GraphPermanentError
    return cls(response.status_code, code, message, error)


class GraphClient:
    """Sends messages as one WhatsApp business number."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, token: str, phone_number_id: str) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def send_text(self, to: str, body: str, *, reply_to: str | None = None) -> str:
        """Send a text message; returns the new message's wamid."""
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                   "type": "text", "text": {"preview_url": False, "body": body}}
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> str:
        try:
            response = await self._http.post(self._url, json=payload, headers=self._headers)
        except httpx.TransportError as exc:
            raise GraphTransientError(0, None, f"network error: {exc!r}", {}) from exc
        if response.is_error:
            raise graph_error(response)
        messages = response.json().get("messages") or [{}]
        wamid = messages[0].get("id")
        if not wamid:
            raise GraphTransientError(response.status_code, None, "answer carried no message id", {})
        return str(wamid)
