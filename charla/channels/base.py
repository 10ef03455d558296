"""The Channel protocol: what every WhatsApp provider does for Charla, and what it is.

A channel sends one provider message per call and returns the provider's id for it; the sender decides
what to send (parts, the 24-hour window, templates) and records each id, so exactly-once stays in one place.
Errors are the typed ones of charla.core.errors: TransientError is retried by the bus, AuthError also alerts
an operator, PermanentError is recorded on the message. Implementations, one module per provider:
charla.channels.meta.channel, charla.channels.twilio.channel, charla.channels.console; they are opened
once per process by charla.channels.registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from charla.channels.chunking import split_text
from charla.channels.media import Media
from charla.core.errors import PermanentError
from charla.core.events import Choice, InboundMessage, OutboundMessage, Provider, Template


class NotConfigured(PermanentError):
    """This process has no channel (no credentials) for the provider a message names."""


@dataclass(frozen=True)
class Traits:
    """What a provider is, whatever the credentials: read by code that decides without sending (the
    scheduler, broadcasts) as well as by the sender."""

    provider: Provider
    window: bool  # WhatsApp's 24-hour rule applies, and templates with it (not on the local console)
    keeps_media: bool  # the provider keeps its own copy of uploaded media: Charla need not serve it after
    local: bool = False  # the simulated console: development only, with its own clock and checkout
    renumbers: bool = False  # it announces a learner's new number (Meta's user_changed_number): old ids alias
    window_closed: frozenset[int] = frozenset()  # error codes meaning "the 24-hour window is closed"
    unreachable: frozenset[int] = frozenset()  # error codes meaning "this learner cannot receive"
    confirms: bool = False  # its delivery statuses carry Charla's outbound id: an interrupted send is looked up


@dataclass(frozen=True)
class Limits:
    """How much one provider message may carry."""

    text: int  # UTF-16 units of one text (longer replies are split, charla.channels.chunking)
    caption: int = 0  # of an image's caption; 0: no images (a flashcard goes as its text)
    buttons: int = 0  # reply buttons in one message; 0: choices go as numbered text
    rows: int = 0  # rows of a list message


@dataclass(frozen=True)
class Document:
    """A file to send (a data export): its bytes and how the learner sees it."""

    data: bytes
    filename: str
    content_type: str


class Channel(Protocol):
    """One WhatsApp provider. Every `send_*` sends one provider message and returns its id."""

    traits: Traits
    limits: Limits

    def recipient(self, message: OutboundMessage) -> str:
        """The address `message` goes to, in this provider's format (PermanentError when it has none)."""
        ...

    async def parts(self, message: OutboundMessage) -> list[str]:
        """The texts a text or choices message goes out as, in order; the last of a choices message is the
        body `send_choices` sends."""
        ...

    async def send_text(self, message: OutboundMessage, text: str, *, reply_to: str | None = None) -> str:
        """One text (a part of `message`), quoting `reply_to` where the provider can."""
        ...

    async def send_choices(self, message: OutboundMessage, body: str, *, reply_to: str | None = None) -> str:
        """`body` offering `message.choices`: buttons or a list where they fit, else the numbered text;
        quoting the learner's message `reply_to` where the provider can."""
        ...

    async def send_image(self, message: OutboundMessage, image: bytes, caption: str) -> str:
        """A PNG (a flashcard) with `caption` (at most `limits.caption`)."""
        ...

    async def send_voice(self, message: OutboundMessage, audio: bytes) -> str:
        """An Ogg/Opus voice note (`message.audio` is its token under /media/<token>.ogg)."""
        ...

    async def send_document(self, message: OutboundMessage, document: Document) -> str:
        """A file with `message.text` as its caption (`message.document` is its token under /media/<token>.json)."""
        ...

    async def send_template(self, message: OutboundMessage, template: Template) -> str:
        """An approved template: the only thing WhatsApp lets through outside the 24-hour window."""
        ...

    async def mark_read(self, learner: str, message_id: str, *, typing: bool = True) -> None:
        """Blue ticks for an inbound message, and with `typing` "typing…" where the provider shows it."""
        ...

    async def download(self, message: InboundMessage, max_bytes: int) -> Media:
        """The media (a voice note) an inbound message carries (charla.channels.media errors)."""
        ...


def numbered(choices: list[Choice]) -> str:
    """Options as text, answered by number: where buttons are not possible, and as the text version of
    Twilio's buttons."""
    return "\n".join(f"{n}. {choice.title}" for n, choice in enumerate(choices, 1))


def numbered_parts(message: OutboundMessage, limit: int) -> list[str]:
    """A message as text parts, choices (if any) numbered after its text."""
    if message.kind != "choices":
        return split_text(message.text, limit)
    return split_text(f"{message.text}\n\n{numbered(message.choices)}", limit)


def fits_buttons(choices: list[Choice], limits: Limits, title: int) -> bool:
    """Whether `choices` fit reply buttons (at most `limits.buttons`, titles of `title` characters, no
    descriptions); else they need a list."""
    return len(choices) <= limits.buttons and all(len(c.title) <= title and not c.description for c in choices)
