"""The provider clients a process has credentials for, opened once at startup, and read receipts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from charla.channels.console import console_channel
from charla.channels.meta.graph import GraphClient
from charla.channels.twilio.api import TwilioChannel
from charla.core.errors import PermanentError, TransientError
from charla.core.events import Provider, ReadReceipt
from charla.core.runtime import Resources

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Channels:
    graph: GraphClient | None
    twilio: TwilioChannel | None


def open_channels(res: Resources, *, twilio: bool = True) -> Channels:
    """Clients for every provider with credentials set (the Twilio SDK session closes with `res`)."""
    s = res.settings
    graph = None
    if s.whatsapp_access_token and s.whatsapp_phone_number_id:
        token = s.whatsapp_access_token.get_secret_value()
        graph = GraphClient(res.http, base_url=s.whatsapp_api_base_url, token=token,
                            phone_number_id=s.whatsapp_phone_number_id)
    twilio_channel = None
    if twilio and s.twilio_account_sid and s.twilio_auth_token:
        callback = f"{s.public_url.rstrip('/')}/webhooks/twilio" if s.public_url else None
        secret = s.twilio_auth_token.get_secret_value()
        twilio_channel = TwilioChannel(account_sid=s.twilio_account_sid, auth_token=secret,
                                       base_url=s.twilio_api_base_url, content_base_url=s.twilio_content_base_url,
                                       from_number=s.twilio_whatsapp_from, status_callback=callback)
        res.closers.append(twilio_channel.aclose)
    return Channels(graph, twilio_channel)


async def mark_read(res: Resources, channels: Channels, provider: Provider, learner: str, message_id: str, *,
                    typing: bool = True) -> None:
    """Blue ticks, and with `typing` "typing…" (Meta and the console; Twilio marks messages read by itself).
    Best effort: a late read receipt is worthless, so failures are logged, never retried."""
    try:
        if provider == "meta" and channels.graph is not None:
            await channels.graph.mark_read(message_id, typing=typing)
        elif provider == "console":
            receipt = ReadReceipt(learner=learner, provider=provider, message_id=message_id, typing=typing)
            await res.redis.publish(console_channel(learner), receipt.model_dump_json())
    except (TransientError, PermanentError) as exc:
        log.info("mark-read of %s skipped: %s", message_id, exc)
