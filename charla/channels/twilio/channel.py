"""Twilio's WhatsApp API as a Channel: texts, Content API buttons with the numbered text as fallback,
media Twilio fetches from CHARLA_PUBLIC_URL, templates by Content SID."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from redis.asyncio import Redis

from charla.channels.base import Document, Limits, Traits, numbered, numbered_parts
from charla.channels.media import Media, MediaGone, download_twilio
from charla.channels.meta.graph import MAX_BUTTONS, MAX_ROWS
from charla.channels.twilio import api, content
from charla.channels.twilio.api import TwilioClient, TwilioPermanentError, TwilioTransientError
from charla.core.errors import PermanentError
from charla.core.events import InboundMessage, OutboundMessage, Template

TRAITS = Traits(provider="twilio", window=True, keeps_media=False, confirms=True,
                window_closed=frozenset({api.WINDOW_CLOSED}), unreachable=frozenset(api.UNREACHABLE_CODES))


class TwilioWhatsApp:
    """Sends from TWILIO_WHATSAPP_FROM, or the number the learner wrote to (`message.via`). The SDK client
    is opened on first use (it needs a running event loop) and closed with the process's resources."""

    traits = TRAITS

    def __init__(self, redis: Redis, http: aiohttp.ClientSession, open_client: Callable[[], TwilioClient], *,
                 account_sid: str, auth_token: str, api_base_url: str, media_hosts: tuple[str, ...],
                 public_url: str | None, text_limit: int) -> None:
        self._redis, self._http, self._open = redis, http, open_client
        self._account, self._token, self._api, self._hosts = account_sid, auth_token, api_base_url, media_hosts
        self._public_url = public_url
        self._client: TwilioClient | None = None
        self.limits = Limits(text=text_limit, buttons=MAX_BUTTONS, rows=MAX_ROWS)

    @property
    def client(self) -> TwilioClient:
        if self._client is None:
            self._client = self._open()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def recipient(self, message: OutboundMessage) -> str:
        if message.to.twilio:
            return message.to.twilio
        if message.to.wa_id:
            return f"whatsapp:+{message.to.wa_id.lstrip('+')}"
        raise PermanentError(f"outbound {message.outbound_id} has no Twilio recipient")

    async def parts(self, message: OutboundMessage) -> list[str]:
        """With Content API buttons the last part is one line (see content.body_parts); else numbered text."""
        if message.kind == "choices" and await self.buttons(message) is not None:
            return content.body_parts(message.text, self.limits.text) or [message.choices_button]
        return numbered_parts(message, self.limits.text)

    async def buttons(self, message: OutboundMessage) -> content.Buttons | None:
        """The content carrying `message.choices` (created once per set of choices), or None for numbered text."""
        return await content.buttons(self._redis, self.client, message.choices, message.choices_button,
                                     numbered(message.choices))

    async def send_text(self, message: OutboundMessage, text: str, *, reply_to: str | None = None) -> str:
        return await self.client.send_text(self.recipient(message), text, sender=message.via,
                                           tag=message.outbound_id)

    async def send_choices(self, message: OutboundMessage, body: str, *, reply_to: str | None = None) -> str:
        buttons = await self.buttons(message)
        if buttons is None:  # `parts` numbered the choices already
            return await self.send_text(message, body)
        try:
            return await self.client.send_content(self.recipient(message), buttons.sid, {"1": body},
                                                  sender=message.via, tag=message.outbound_id)
        except TwilioPermanentError as exc:
            if exc.code not in api.CONTENT_GONE_CODES:
                raise
            await content.forget(self._redis, buttons.types)  # deleted at Twilio: the retry creates it again
            raise TwilioTransientError(exc.status, exc.code, f"content {buttons.sid} is gone: {exc}") from exc

    async def send_image(self, message: OutboundMessage, image: bytes, caption: str) -> str:
        """An image Charla keeps (`message.image`, a chart) goes as media Twilio fetches from /media/<token>.png;
        a flashcard (rendered on the fly, limits.caption is 0) goes as its caption's text."""
        if not message.image:
            return await self.send_text(message, caption)
        url = self._served(f"{message.image}.png", "images")
        return await self.client.send_media(self.recipient(message), url, body=caption, sender=message.via,
                                            tag=message.outbound_id)

    async def send_voice(self, message: OutboundMessage, audio: bytes) -> str:
        url = self._served(f"{message.audio}.ogg", "voice notes")
        return await self.client.send_media(self.recipient(message), url, sender=message.via,
                                            tag=message.outbound_id)

    async def send_document(self, message: OutboundMessage, document: Document) -> str:
        extension = (message.filename or ".json").rsplit(".", 1)[-1]
        url = self._served(f"{message.document}.{extension}", "data exports")
        return await self.client.send_media(self.recipient(message), url, body=message.text, sender=message.via,
                                            tag=message.outbound_id)

    async def send_template(self, message: OutboundMessage, template: Template) -> str:
        """`template.name` is the approved template's Content SID (HX…)."""
        return await self.client.send_template(self.recipient(message), template.name, sender=message.via,
                                               tag=message.outbound_id)

    async def mark_read(self, learner: str, message_id: str, *, typing: bool = True) -> None:
        """Nothing to do: Twilio marks messages read by itself."""

    async def download(self, message: InboundMessage, max_bytes: int) -> Media:
        media = message.payload.get("media") or {}
        if not media.get("url"):
            raise MediaGone("no Twilio media URL")
        return await download_twilio(self._http, url=str(media["url"]), account_sid=self._account,
                                     auth_token=self._token, max_bytes=max_bytes, api_base_url=self._api,
                                     allowed_hosts=self._hosts)

    def _served(self, name: str, what: str) -> str:
        """The public URL of media Charla serves at /media/`name` (Twilio fetches it from there)."""
        if not self._public_url:
            raise PermanentError(f"CHARLA_PUBLIC_URL is not set: Twilio cannot fetch {what} from Charla")
        return f"{self._public_url.rstrip('/')}/media/{name}"
