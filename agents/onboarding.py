"""The one-time offer of the placement test, made with a new learner's first tutor reply: the reply itself
is not held back, it carries two choices (take the test now, or not now), and the offer is recorded with it
so it is never made again (charla.journey.placement)."""

from __future__ import annotations

import uuid

from agents.outgoing import Reply
from charla.core.catalog import say
from charla.core.events import Choice
from charla.core.settings import Settings
from charla.journey.items import languages
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import Profile


def offer(settings: Settings, reply: Reply, stored: Profile, learner_id: uuid.UUID, langs: tuple[str, str]) -> None:
    """Add the offer to `reply` when it is a plain tutor reply to a learner never offered it (no turn of theirs
    counted yet, no measured level), whose target language has a placement catalog."""
    target, native = langs
    if (not settings.placement_offer or stored.placement_offered or stored.applied_turn or stored.level_measured
            or reply.choices or reply.commit is not None or reply.usage.provider == "canned"
            or target not in languages()):
        return
    reply.text += "\n\n" + say("placement.offer", native)
    reply.choices = [Choice(id="placement:start", title=say("placement.offer_yes", native)),
                     Choice(id="placement:start:later", title=say("placement.offer_no", native))]

    async def commit(conn: Conn) -> None:
        def offered(p: Profile) -> None:
            p.placement_offered = True
        await profile.update(conn, learner_id, offered)
    reply.commit = commit
