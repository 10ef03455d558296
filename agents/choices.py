"""Choices are capabilities: which command a learner's message or tap is. A button or list row acts only as the
answer to the message that offered it to that learner (the session's latest offer, the offering message named
by the reply's context, or that learner's open practice prompt); a yes to a destructive question only while
that question is Charla's latest. Anything else is the words of its title, tutored as text."""

from __future__ import annotations

import logging
import uuid

from agents import activities
from agents.outgoing import SLOWER
from charla.core.events import InboundMessage
from charla.core.runtime import Resources
from charla.journey import missions
from charla.store import messages
from charla.store.session import Session
from charla.store.turns import Waiting
from charla.tutor import commands, practice, review

log = logging.getLogger(__name__)

# Questions whose "yes" destroys something: it counts only while the question is the latest reply.
_CONFIRMED = {"forget:yes": "forget", "cancel:yes": "cancel"}

# Offered choices that run a command as they are; any other offered id is the text of its title.
_ANSWERS = {"forget:no": "forget_cancel", "cancel:no": "cancel_keep"}
# Choices riding on a tutor reply (save a new word, hear it slower): a typed number after such a reply is
# the learner's answer to the tutor ("how many brothers?" "2"), so only a tap takes them.
_TAPPED_ONLY = ("save:", SLOWER)
# A mission's choices that answer the open one; its other ids start the mission they name.
_MISSION_STEPS = {f"{missions.KIND}:resume", f"{missions.KIND}:abandon"}


async def command_of(res: Resources, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                      event: InboundMessage) -> commands.Command | None:
    """The command the newest message is, when it is one (or a choice Charla offered), whatever arrived
    before it in the same burst."""
    newest = batch[-1]
    context = event.context_id if event.message_id == newest.message_id else None
    choice = await offered(res, learner_id, newest, sess, context)
    if choice is not None:
        return chosen(choice, sess)
    if not newest.text or newest.kind != "text":
        return None
    return commands.parse(newest.text, awaiting=asking(sess))


async def offered(res: Resources, learner_id: uuid.UUID, row: Waiting, sess: Session,
                  context: str | None) -> str | None:
    """The choice `row` picks, when Charla offered it to this learner: a numbered answer or a tap on the
    latest offer, a tap on the message that offered it (`context`), a practice prompt still open."""
    tapped = str(row.payload.get("choice_id") or "")
    if not tapped:
        number = (row.text or "").strip().rstrip(".)")
        if number.isdigit() and 0 < int(number) <= len(sess.offered):
            picked = sess.offered[int(number) - 1]  # a numbered answer to choices sent as text (Twilio)
            return None if picked.startswith(_TAPPED_ONLY) else picked  # "2" answering the tutor is words
        return None
    if tapped.startswith("grade:"):  # offered to this learner and not graded yet; else its title is words
        async with res.pool.connection() as conn:
            return tapped if await review.is_open(conn, learner_id, tapped) else None
    if tapped in sess.offered:
        return tapped
    async with res.pool.connection() as conn:
        if tapped.startswith("practice:"):
            found = await practice.prompt_body(conn, learner_id, tapped.removeprefix("practice:"))
            return tapped if found is not None else None
        if context and tapped in await messages.offered(conn, learner_id, context):
            return tapped
    log.info("learner %s tapped %r, which was not offered to them: answered as text", learner_id, tapped)
    return None


def chosen(choice: str, sess: Session) -> commands.Command | None:
    """What an offered choice does; None when it is only words (its title is tutored as text)."""
    if choice.startswith("topic:"):
        return commands.Command("topic", choice.removeprefix("topic:"))
    if choice.startswith("practice:"):
        return commands.Command("practice_start", choice.removeprefix("practice:"))
    if choice.startswith(("grade:", "save:")):
        return commands.Command("grade" if choice.startswith("grade:") else "save_tap", choice.split(":", 1)[1]
                                if choice.startswith("save:") else choice)
    if choice.startswith(("settings:", "placement:start")):  # they start (or resume) their activity
        return commands.Command("start", choice.split(":", 1)[0], arg=choice)
    if choice.startswith(f"{missions.KIND}:") and choice not in _MISSION_STEPS:  # a mission from the list
        return commands.Command("start", missions.KIND, arg=choice.split(":", 1)[1])
    if choice == SLOWER:  # no activity stays open for it: each tap replays the last phrase
        return commands.Command("start", "slow")
    if activities.kind_of(choice) is not None:
        return commands.Command("step", choice)
    if (question := _CONFIRMED.get(choice)) is not None:
        return commands.Command(f"{question}_confirm") if asking(sess) == question else None
    return commands.Command(_ANSWERS[choice]) if choice in _ANSWERS else None


def asking(sess: Session) -> str | None:
    """The yes/no question the learner may be answering: the one Charla asked, if its reply was the latest
    (its "yes" is still on offer)."""
    question = sess.awaiting
    return question if question is not None and f"{question}:yes" in sess.offered else None
