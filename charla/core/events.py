"""Typed events carried on the bus. Every event names the learner it belongs to: that key orders it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Provider = Literal["meta", "twilio", "console"]

# Ordering key of events that belong to no learner (provider-wide errors).
SYSTEM_LEARNER = "system"
# Provider objects nested deeper are refused at the edge: real ones nest about 10 levels, and the bus's JSON
# encoder (pydantic) gives up near 250, which would fail a webhook after part of it was published.
MAX_DEPTH = 64


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON-like `value` nests more than `limit` lists and objects deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def without_nul(value: Any) -> Any:
    """JSON-like `value` with NUL characters removed from every string, keys included (PostgreSQL's text and
    JSONB refuse them). Recursive: check deeper_than first."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Identity(BaseModel):
    """How a learner is known to a provider. Any subset may be present; all present ones are kept."""

    model_config = ConfigDict(frozen=True)

    wa_id: str | None = None  # WhatsApp phone-number id
    user_id: str | None = None  # WhatsApp business-scoped user id (no phone number)
    twilio: str | None = None  # Twilio address, e.g. "whatsapp:+14155238886"
    console: str | None = None  # local console learner handle
    name: str | None = None

    def key(self) -> str:
        """The ordering key: the most stable identity present."""
        for prefix, value in (("wa", self.wa_id), ("bsuid", self.user_id), ("tw", self.twilio),
                              ("console", self.console)):
            if value:
                return f"{prefix}:{value}"
        raise ValueError("identity has no id")


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(default_factory=new_id)
    at: datetime = Field(default_factory=utcnow)
    learner: str


class InboundMessage(_Event):
    """A learner's message as received by the orchestrator (already verified and deduplicated)."""

    type: Literal["inbound.message"] = "inbound.message"
    provider: Provider
    message_id: str  # provider message id: wamid.… / MessageSid / console id
    identity: Identity
    kind: str  # text, audio, image, interactive, …
    text: str | None = None
    context_id: str | None = None  # the message this one replies to, when any
    sent_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class SystemNotice(_Event):
    """A notice WhatsApp wrote, not the learner (`type: system`): never answered. `notice` is Meta's
    `system.type` (user_changed_number, user_changed_user_id, customer_identity_changed, …); `identity` is who
    it came from (the old ids), `new_identity` the ids the learner has now, when the notice names them."""

    type: Literal["inbound.system"] = "inbound.system"
    provider: Provider
    message_id: str
    notice: str
    identity: Identity
    new_identity: Identity | None = None
    body: str = ""
    sent_at: datetime | None = None


class PreferenceUpdate(_Event):
    """A learner's marketing-message preference changed at WhatsApp (`user_preferences` webhook): `stop`
    pauses everything proactive, `resume` allows it again."""

    type: Literal["inbound.preference"] = "inbound.preference"
    provider: Provider
    identity: Identity
    category: str
    value: str  # stop | resume
    occurred_at: datetime | None = None


class PlatformNotice(_Event):
    """A WhatsApp Business Account update for the operator (ordered under SYSTEM_LEARNER): a template's status,
    quality or category changed, or the account's standing (restriction, violation, ban)."""

    type: Literal["platform.notice"] = "platform.notice"
    provider: Provider
    topic: str  # the webhook field: message_template_status_update, message_template_quality_update, …
    event: str  # APPROVED / REJECTED / PAUSED …, the new quality score, the new category, the account event
    template: str | None = None
    language: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Choice(BaseModel):
    """One option offered to the learner; the tap comes back with its `id` (InboundMessage.payload)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    description: str = ""


class Template(BaseModel):
    """An approved template (the only thing WhatsApp allows outside the 24-hour window)."""

    model_config = ConfigDict(frozen=True)

    name: str
    language: str
    body_params: list[str] = Field(default_factory=list)
    button_payload: str | None = None  # a quick-reply button's payload: its tap comes back as a `button` message


class Flashcard(BaseModel):
    """A vocabulary card sent as an image (rendered by the sender), the message text as its caption."""

    model_config = ConfigDict(frozen=True)

    word: str
    translation: str = ""
    example: str = ""


class OutboundMessage(_Event):
    """A message for the sender to deliver; `outbound_id` makes the send idempotent.

    kind "choices": `text` followed by `choices` (reply buttons for up to 3 short ones, else a list behind
    `choices_button`: Meta's interactive messages, Twilio content (charla.channels.twilio.content); numbered text where
    neither can carry them).
    """

    type: Literal["outbound.message"] = "outbound.message"
    outbound_id: str
    provider: Provider
    to: Identity
    kind: Literal["text", "choices", "template", "voice", "document", "image"] = "text"
    text: str
    choices: list[Choice] = Field(default_factory=list)
    choices_button: str = "Options"
    reply_to: str | None = None  # provider id of the inbound message this answers
    via: str | None = None  # our number the learner wrote to (Twilio sends from it)
    template: Template | None = None  # what to send instead when the window is closed (kind "template": always)
    flashcard: Flashcard | None = None  # sent as an image where the provider takes uploads (Meta)
    audio: str | None = None  # kind "voice": the token of an Ogg/Opus note under MEDIA_KEY (`text` is its transcript)
    document: str | None = None  # kind "document": the token of a file under MEDIA_KEY (`text`: its caption)
    filename: str | None = None  # kind "document": the name the learner sees (None: the data export's)
    image: str | None = None  # kind "image": the token of a PNG under MEDIA_KEY `img:<token>` (`text`: its caption)


class ReadReceipt(_Event):
    """Ask the sender to mark an inbound message read and show "typing…" while the reply is prepared."""

    type: Literal["outbound.read"] = "outbound.read"
    provider: Provider
    message_id: str
    typing: bool = True  # False: read by a person who may not answer soon (human takeover)


class DeliveryStatus(_Event):
    """A provider's word on one of our outbound messages (sent, delivered, read, played, failed)."""

    type: Literal["delivery.status"] = "delivery.status"
    provider: Provider
    provider_message_id: str
    status: str
    outbound_id: str | None = None  # carried back in biz_opaque_callback_data
    occurred_at: datetime | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


class ProviderError(_Event):
    """A provider error not tied to one message (e.g. a value-level `errors` webhook: rate limits)."""

    type: Literal["provider.error"] = "provider.error"
    provider: Provider
    code: int | None = None
    title: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class TurnEvent(_Event):
    """One answered tutoring turn: what the learner said, the reply, its corrections and what it cost.
    Published once per turn (deduplicated on `turn_id`) for the memory agent, analytics and the console."""

    type: Literal["tutor.turn"] = "tutor.turn"
    turn_id: int
    learner_id: str
    message_ids: list[str]  # provider ids of the learner messages answered, in order
    text: str  # the learner's words (several messages of a burst joined by newlines)
    reply: str
    corrections: list[dict[str, Any]] = Field(default_factory=list)
    vocabulary: list[dict[str, Any]] = Field(default_factory=list)
    llm: str  # provider that answered: groq, anthropic, openai, local; or command / canned
    model: str = ""
    route: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    total_ms: int = 0
    voice_example: bool = False
    target_language: str = ""
    native_language: str = ""


class SpeakRequest(_Event):
    """Say `text` in `language` as a voice note and send it as outbound message `outbound_id` (already
    recorded by the conversation agent; the voice agent synthesizes it and hands it to the sender)."""

    type: Literal["voice.speak"] = "voice.speak"
    outbound_id: str
    provider: Provider
    to: Identity
    via: str | None = None
    text: str
    language: str
    slow: bool = False  # slower than normal speech (a replay, words to repeat)


class StripeEvent(_Event):
    """A Stripe webhook event whose signature the orchestrator verified (`payload` is its `data.object`).
    Ordered per subscription (or customer): `learner` is `stripe:<subscription or customer or object id>`."""

    type: Literal["stripe.event"] = "stripe.event"
    stripe_id: str
    stripe_type: str
    created: int
    payload: dict[str, Any] = Field(default_factory=dict)


Event = Annotated[InboundMessage | SystemNotice | PreferenceUpdate | PlatformNotice | OutboundMessage | ReadReceipt
                  | DeliveryStatus | ProviderError | TurnEvent | StripeEvent | SpeakRequest,
                  Field(discriminator="type")]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def decode_event(raw: bytes | str) -> Event:
    """Parse one event from its JSON form (raises pydantic.ValidationError on junk)."""
    return EVENTS.validate_json(raw)
