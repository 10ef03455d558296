"""Meta WhatsApp Cloud API (Graph API) client, with its error codes mapped to typed errors."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import orjson

from charla.core import metrics
from charla.core.errors import AuthError, PermanentError, TransientError

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


class GraphAuthError(GraphTransientError, AuthError):
    """The token is expired or revoked. Sends wait (and eventually dead-letter) until an operator fixes it."""

    def __init__(self, status: int, code: int | None, message: str, details: dict[str, Any]) -> None:
        super().__init__(status, code, message, details)
        self.retry_after = 30.0


class GraphPermanentError(GraphError, PermanentError):
    """Rejected for good (bad recipient, closed 24 h window, invalid request): do not retry as is."""


def graph_error(status: int, body: bytes, reason: str = "") -> GraphError:
    """The typed error for a non-2xx Graph answer (`body` as received)."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    error = (answer.get("error") if isinstance(answer, dict) else None) or {}
    code = error.get("code")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    message = str(error.get("message") or reason or status)
    if code in AUTH_CODES or status == 401:
        return GraphAuthError(status, code, message, error)
    transient = status >= 500 or status == 429 or code in _TRANSIENT_CODES
    cls = GraphTransientError if transient else GraphPermanentError
    return cls(status, code, message, error)


# WhatsApp's limits for interactive messages.
MAX_BUTTONS, BUTTON_TITLE, INTERACTIVE_BODY, CAPTION_LIMIT = 3, 20, 1024, 1024
MAX_ROWS, ROW_TITLE, ROW_DESCRIPTION, LIST_BUTTON = 10, 24, 72, 20


def check_buttons(body: str, buttons: list[tuple[str, str]]) -> None:
    """Raise PermanentError naming the broken limit of a reply-buttons message."""
    problems = [f"{len(buttons)} buttons (1 to {MAX_BUTTONS})"] if not 1 <= len(buttons) <= MAX_BUTTONS else []
    problems += [f"button title {t!r} over {BUTTON_TITLE} characters" for _, t in buttons if len(t) > BUTTON_TITLE]
    problems += [f"body over {INTERACTIVE_BODY} characters"] if len(body) > INTERACTIVE_BODY else []
    if problems:
        raise PermanentError("invalid reply buttons: " + "; ".join(problems))


def check_list(body: str, button: str, rows: list[tuple[str, str, str]]) -> None:
    """Raise PermanentError naming the broken limit of a list message (rows: id, title, description)."""
    problems = [f"{len(rows)} rows (1 to {MAX_ROWS})"] if not 1 <= len(rows) <= MAX_ROWS else []
    problems += [f"row title {t!r} over {ROW_TITLE} characters" for _, t, _ in rows if len(t) > ROW_TITLE]
    problems += [f"row description over {ROW_DESCRIPTION} characters" for *_, d in rows if len(d) > ROW_DESCRIPTION]
    problems += [f"list button over {LIST_BUTTON} characters"] if len(button) > LIST_BUTTON else []
    problems += [f"body over {INTERACTIVE_BODY} characters"] if len(body) > INTERACTIVE_BODY else []
    if problems:
        raise PermanentError("invalid list: " + "; ".join(problems))


class GraphClient:
    """Sends messages as one WhatsApp business number."""

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, token: str, phone_number_id: str) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._media_url = f"{base_url.rstrip('/')}/{phone_number_id}/media"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def send_text(self, to: str, body: str, *, reply_to: str | None = None, tag: str | None = None) -> str:
        """Send a text message; returns the new message's wamid. `tag` comes back on its statuses."""
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                   "type": "text", "text": {"preview_url": False, "body": body}}
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return await self._send(payload, tag)

    async def send_template(self, to: str, name: str, language: str, *, body_params: list[str] | None = None,
                            button_payload: str | None = None, tag: str | None = None) -> str:
        """Send an approved template (the only thing allowed outside the 24-hour window); a quick-reply
        button's payload comes back with the learner's tap."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        components: list[dict[str, Any]] = []
        if body_params:
            components.append({"type": "body", "parameters": [{"type": "text", "text": t} for t in body_params]})
        if button_payload:
            components.append({"type": "button", "sub_type": "quick_reply", "index": "0",
                               "parameters": [{"type": "payload", "payload": button_payload}]})
        if components:
            template["components"] = components
        return await self._send({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                 "type": "template", "template": template}, tag)

    async def send_buttons(self, to: str, body: str, buttons: list[tuple[str, str]], *,
                           reply_to: str | None = None, tag: str | None = None) -> str:
        """Up to 3 reply buttons (id, title); the tap comes back as an `interactive` message."""
        check_buttons(body, buttons)
        action = {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons]}
        return await self._interactive(to, {"type": "button", "body": {"text": body}, "action": action}, reply_to,
                                       tag)

    async def send_list(self, to: str, body: str, button: str, rows: list[tuple[str, str, str]], *,
                        reply_to: str | None = None, tag: str | None = None) -> str:
        """A list of up to 10 rows (id, title, description) behind one button."""
        check_list(body, button, rows)
        section = {"title": button[:24], "rows": [{"id": i, "title": t, "description": d} for i, t, d in rows]}
        action = {"button": button, "sections": [section]}
        return await self._interactive(to, {"type": "list", "body": {"text": body}, "action": action}, reply_to, tag)

    async def _interactive(self, to: str, interactive: dict[str, Any], reply_to: str | None, tag: str | None) -> str:
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                   "type": "interactive", "interactive": interactive}
        if reply_to:  # a contextual reply: WhatsApp quotes the learner's message above the buttons
            payload["context"] = {"message_id": reply_to}
        return await self._send(payload, tag)

    async def upload_voice(self, ogg_opus: bytes) -> str:
        """Upload an Ogg/Opus voice note; returns the media id to send."""
        return await self.upload(ogg_opus, "audio/ogg", "voice.ogg")

    async def upload(self, data: bytes, content_type: str, filename: str) -> str:
        """Upload media (`POST /{phone-id}/media`); returns the media id to send."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", content_type)
        form.add_field("file", data, filename=filename, content_type=content_type)
        return str((await self._request(self._media_url, data=form, operation="upload"))["id"])

    async def send_image(self, to: str, media_id: str, *, caption: str = "", tag: str | None = None) -> str:
        """Send an uploaded image with a caption (up to 1024 characters)."""
        image: dict[str, Any] = {"id": media_id}
        if caption:
            image["caption"] = caption[:1024]
        return await self._send({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                 "type": "image", "image": image}, tag)

    async def send_document(self, to: str, media_id: str, filename: str, *, caption: str = "",
                            tag: str | None = None) -> str:
        """Send an uploaded document, shown as a file named `filename` with a caption (up to 1024 characters)."""
        document: dict[str, Any] = {"id": media_id, "filename": filename}
        if caption:
            document["caption"] = caption[:CAPTION_LIMIT]
        return await self._send({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                 "type": "document", "document": document}, tag)

    async def send_voice(self, to: str, media_id: str, *, tag: str | None = None) -> str:
        """Send an uploaded voice note (played inline, like one recorded in WhatsApp)."""
        return await self._send({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                 "type": "audio", "audio": {"id": media_id, "voice": True}}, tag)

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
        operation = "mark_read" if payload.get("status") == "read" else "send"
        return await self._request(self._url, data=orjson.dumps(payload), json_body=True, operation=operation)

    async def _request(self, url: str, *, data: Any, operation: str, json_body: bool = False) -> dict[str, Any]:
        headers = {**self._headers, "Content-Type": "application/json"} if json_body else self._headers
        with metrics.provider_call("graph", operation):
            try:
                async with self._http.post(url, data=data, headers=headers) as response:
                    body = await response.read()
                    if response.status >= 400:
                        raise graph_error(response.status, body, response.reason or "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise GraphTransientError(0, None, f"network error: {exc!r}", {}) from exc
        answer = json.loads(body) if body else {}
        return answer if isinstance(answer, dict) else {}
