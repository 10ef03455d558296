"""The channels a process has credentials for, opened once at startup, and each provider's traits."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from charla.channels import console
from charla.channels.base import Channel, NotConfigured, Traits
from charla.channels.meta import channel as meta
from charla.channels.twilio import channel as twilio
from charla.channels.twilio.api import TwilioClient
from charla.core.errors import PermanentError, TransientError
from charla.core.runtime import Resources
from charla.core.settings import Settings

log = logging.getLogger(__name__)

TRAITS: dict[str, Traits] = {t.provider: t for t in (meta.TRAITS, twilio.TRAITS, console.TRAITS)}


def traits(provider: str) -> Traits:
    """What `provider` is (NotConfigured for a name Charla has no channel for)."""
    try:
        return TRAITS[provider]
    except KeyError:
        raise NotConfigured(f"unknown WhatsApp provider {provider!r}") from None


def local_console(settings: Settings) -> bool:
    """Whether this deployment is the local console (WHATSAPP_PROVIDER=console): its clock, its checkout."""
    return traits(settings.whatsapp_provider).local


@dataclass(frozen=True)
class Channels:
    """The open channels by provider name."""

    by_provider: dict[str, Channel]

    def channel_for(self, provider: str) -> Channel:
        """The channel sending through `provider`; NotConfigured (a PermanentError) when this process has
        no credentials for it."""
        try:
            return self.by_provider[provider]
        except KeyError:
            raise NotConfigured(f"no credentials to send through {provider!r}") from None


def open_channels(res: Resources) -> Channels:
    """A channel for every provider with credentials set, and the console (its SDK session, if any, closes
    with `res`)."""
    opened: list[Channel] = [console.ConsoleChannel(res.redis, text_limit=res.settings.meta_text_limit)]
    if (graph := _meta(res)) is not None:
        opened.append(graph)
    if (sms := _twilio(res)) is not None:
        opened.append(sms)
    return Channels({channel.traits.provider: channel for channel in opened})


def _meta(res: Resources) -> meta.MetaChannel | None:
    s = res.settings
    if not s.whatsapp_access_token:
        return None
    token = s.whatsapp_access_token.get_secret_value()
    return meta.MetaChannel(res.http, base_url=s.whatsapp_api_base_url, token=token,
                            phone_number_id=s.whatsapp_phone_number_id, text_limit=s.meta_text_limit)


def _twilio(res: Resources) -> twilio.TwilioWhatsApp | None:
    s = res.settings
    if not (s.twilio_account_sid and s.twilio_auth_token):
        return None
    account, secret = s.twilio_account_sid, s.twilio_auth_token.get_secret_value()
    callback = f"{s.public_url.rstrip('/')}/webhooks/twilio" if s.public_url else None

    def client() -> TwilioClient:
        return TwilioClient(account_sid=account, auth_token=secret, base_url=s.twilio_api_base_url,
                            content_base_url=s.twilio_content_base_url, from_number=s.twilio_whatsapp_from,
                            status_callback=callback)

    channel = twilio.TwilioWhatsApp(res.redis, res.http, client, account_sid=account, auth_token=secret,
                                    api_base_url=s.twilio_api_base_url, media_hosts=s.twilio_media_hosts,
                                    public_url=s.public_url, text_limit=s.twilio_text_limit)
    res.closers.append(channel.aclose)
    return channel


async def mark_read(channels: Channels, provider: str, learner: str, message_id: str, *,
                    typing: bool = True) -> None:
    """Blue ticks, and with `typing` "typing…" (Meta and the console; Twilio marks messages read by itself).
    Best effort: a late read receipt is worthless, so failures are logged, never retried."""
    try:
        await channels.channel_for(provider).mark_read(learner, message_id, typing=typing)
    except (TransientError, PermanentError) as exc:
        log.info("mark-read of %s skipped: %s", message_id, exc)
