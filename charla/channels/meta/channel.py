"""The Meta WhatsApp Cloud API as a Channel: GraphClient's sends, interactive buttons and lists, uploads."""

from __future__ import annotations

import aiohttp

from charla.channels.base import Document, Limits, NotConfigured, Traits, fits_buttons
from charla.channels.chunking import split_text
from charla.channels.media import Media, download_meta
from charla.channels.meta import graph
from charla.channels.meta.graph import GraphClient
from charla.core.errors import PermanentError
from charla.core.events import InboundMessage, OutboundMessage, Template

TRAITS = Traits(provider="meta", window=True, keeps_media=True, renumbers=True, confirms=True,
                window_closed=frozenset({graph.WINDOW_CLOSED}), unreachable=frozenset(graph.UNREACHABLE_CODES))


class MetaChannel:
    """Sends as one business number (WHATSAPP_PHONE_NUMBER_ID); downloads media with the same token. Every
    send is tagged with its outbound id, which comes back on the message's statuses."""

    traits = TRAITS

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, token: str, phone_number_id: str | None,
                 text_limit: int) -> None:
        self._http, self._base_url, self._token = http, base_url, token
        self._graph = GraphClient(http, base_url=base_url, token=token, phone_number_id=phone_number_id) \
            if phone_number_id else None
        self.limits = Limits(text=text_limit, caption=graph.CAPTION_LIMIT, buttons=graph.MAX_BUTTONS,
                             rows=graph.MAX_ROWS)

    @property
    def graph(self) -> GraphClient:
        if self._graph is None:
            raise NotConfigured("no credentials to send through 'meta': set WHATSAPP_PHONE_NUMBER_ID")
        return self._graph

    def recipient(self, message: OutboundMessage) -> str:
        to = message.to.wa_id or message.to.user_id
        if not to:
            raise PermanentError(f"outbound {message.outbound_id} has no WhatsApp recipient")
        return to

    async def parts(self, message: OutboundMessage) -> list[str]:
        if message.kind != "choices":
            return split_text(message.text, self.limits.text)
        return split_text(message.text, min(self.limits.text, graph.INTERACTIVE_BODY)) or [" "]

    async def send_text(self, message: OutboundMessage, text: str, *, reply_to: str | None = None) -> str:
        return await self.graph.send_text(self.recipient(message), text, reply_to=reply_to, tag=message.outbound_id)

    async def send_choices(self, message: OutboundMessage, body: str, *, reply_to: str | None = None) -> str:
        to, tag, choices = self.recipient(message), message.outbound_id, message.choices
        if fits_buttons(choices, self.limits, graph.BUTTON_TITLE):
            return await self.graph.send_buttons(to, body, [(c.id, c.title) for c in choices], reply_to=reply_to,
                                                 tag=tag)
        rows = [(c.id, c.title, c.description) for c in choices]
        return await self.graph.send_list(to, body, message.choices_button, rows, reply_to=reply_to, tag=tag)

    async def send_image(self, message: OutboundMessage, image: bytes, caption: str) -> str:
        media_id = await self.graph.upload(image, "image/png", "image.png")
        return await self.graph.send_image(self.recipient(message), media_id, caption=caption,
                                           tag=message.outbound_id)

    async def send_voice(self, message: OutboundMessage, audio: bytes) -> str:
        media_id = await self.graph.upload_voice(audio)
        return await self.graph.send_voice(self.recipient(message), media_id, tag=message.outbound_id)

    async def send_document(self, message: OutboundMessage, document: Document) -> str:
        media_id = await self.graph.upload(document.data, document.content_type, document.filename)
        return await self.graph.send_document(self.recipient(message), media_id, document.filename,
                                              caption=message.text, tag=message.outbound_id)

    async def send_template(self, message: OutboundMessage, template: Template) -> str:
        return await self.graph.send_template(self.recipient(message), template.name, template.language,
                                              body_params=template.body_params or None,
                                              button_payload=template.button_payload, tag=message.outbound_id)

    async def mark_read(self, learner: str, message_id: str, *, typing: bool = True) -> None:
        await self.graph.mark_read(message_id, typing=typing)

    async def download(self, message: InboundMessage, max_bytes: int) -> Media:
        return await download_meta(self._http, base_url=self._base_url, token=self._token,
                                   media_id=media_id(message), max_bytes=max_bytes)


def media_id(message: InboundMessage) -> str:
    """The media id of an inbound audio message in Meta's format (the console's too)."""
    body = message.payload.get("message") or {}
    found = (body.get("audio") or body.get("voice") or {}).get("id") if isinstance(body, dict) else None
    if not found:
        raise NoMediaId(f"message {message.message_id} carries no media id")
    return str(found)


class NoMediaId(PermanentError):
    """An audio message without a media id (a malformed or hand-made delivery)."""
