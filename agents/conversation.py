"""The conversation agent: every inbound learner message is answered exactly once, by the tutor.

A turn: record the message; if a later message of the same learner is already queued, stop there (that one
answers the burst); otherwise take every unanswered message of the learner (a burst, in order), run a command
or ask the models, and record the reply, the turn and "answered" in one transaction before handing the reply
to the outbox. A retry after a crash finds the recorded reply and re-publishes it under the same dedupe keys,
so nothing is sent twice. When no provider can answer, the learner gets one honest "give me a moment"
message, the turn is deferred and re-published with backoff until answered: never dropped, never twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from functools import partial

import stripe

from agents import actions, activities, choices, erasure, lifecycle, onboarding, outgoing, upkeep
from agents.outgoing import Charge, Reply
from charla.channels.registry import Channels, mark_read, open_channels
from charla.core import logs
from charla.core.bus import Delivery
from charla.core.catalog import say
from charla.core.errors import PermanentError
from charla.core.events import InboundMessage, SystemNotice, TurnEvent, utcnow
from charla.core.keys import server_key
from charla.core.runtime import Resources
from charla.core.worker import Handler
from charla.ops import takeover
from charla.store import learners, memories, messages, profile, session, turns
from charla.store.messages import Conn, Outbound
from charla.store.session import Said, Session
from charla.store.turns import Usage, Waiting
from charla.tutor import commands, practice, wordbook
from charla.tutor.activity import Commit, Step
from charla.tutor.findings import as_correction, findings
from charla.tutor.pipeline import Tutor
from charla.tutor.prompt import TutorReply, language_name, render
from charla.tutor.router import AllProvidersFailed, Router, open_providers
from payments import billing, entitlements
from voice import heard as spoken

log = logging.getLogger(__name__)

# Kinds whose text is the learner's words (audio: its transcript; edit: the new words of an unknown message).
_USABLE = {"text", "interactive", "button", "audio", "edit"}
_NO_REPLY = {"reaction", "revoke"}  # a reaction (or its removal), a deletion: noted, not answered
_AMENDS = {"edit", "revoke"}  # change an earlier message (see lifecycle.amend)
# Commands that still run while an operator holds the learner (their data, money and reminders wait for nobody).
_WHILE_HELD = {"forget", "forget_confirm", "forget_cancel", "export", "cancel", "cancel_confirm", "cancel_keep",
               "resume", "reminders_off", "reminders_on", "opt_out", "opt_in"}
# Turns one conversation process runs at once (at least; CHARLA_AGENT_CONCURRENCY may raise it). A turn mostly
# waits on the model, up to CHARLA_LLM_TIMEOUT_S per provider, so slots must cover the offered rate times that
# wait: with 8, Claude at 20 s answered 0.4 turns/s and learners waited a minute (benchmark O). Kept under the
# SDKs' 100 connections per provider, so a turn never queues for a connection.
SLOTS = 96


def build(res: Resources) -> Handler:
    providers = open_providers(res.settings)
    router = Router.from_settings(res.settings, providers, res.redis)
    res.closers.append(router.close)
    embedder = memories.Embedder() if res.settings.recall_k else None
    agent = Conversation(res, Tutor(router, res.settings), open_channels(res), embedder,
                         billing.open_client(res.settings))
    res.background += [partial(upkeep.retry_deferred, res), partial(upkeep.announce, res, agent.tutor.router)]
    return agent.handle


@dataclass
class Conversation:
    res: Resources
    tutor: Tutor
    channels: Channels
    embedder: memories.Embedder | None
    stripe: stripe.StripeClient | None = None
    _receipts: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, delivery: Delivery) -> None:
        event = delivery.event()
        if isinstance(event, SystemNotice):
            await self._notice(delivery, event)
            return
        if not isinstance(event, InboundMessage):
            raise PermanentError(f"conversation agent cannot handle {event.type}")
        if await entitlements.is_blocked(self.res.redis, event.learner):
            log.info("learner %s is blocked: message %s dropped", logs.pseudonym(event.learner), event.message_id)
            return
        async with self.res.pool.connection() as conn, conn.transaction():
            seen_at = None if event.kind == "call" else event.sent_at or event.at  # a call opens no window
            learner_id = await learners.upsert(conn, event.identity, seen_at, secret=server_key(self.res.settings))
            event = await lifecycle.current(conn, learner_id, event)
            inbound_id = await messages.record_inbound(conn, learner_id, event)
            await wordbook.react(conn, learner_id, event, wordbook.MAX_WORDS)
            if event.kind in _NO_REPLY or (event.kind == "call" and not await lifecycle.may_write(conn, learner_id)):
                await turns.mark_noted(conn, inbound_id)
            amended = await lifecycle.amend(conn, learner_id, inbound_id, event) if event.kind in _AMENDS else None
            replies = await messages.replies(conn, inbound_id)
        if event.kind == "revoke":
            await lifecycle.forget_said(self.res.redis, event.learner, event, self.res.settings.session_ttl_s)
        reply, delay = replies.get("reply"), replies.get("delay")
        if delay is not None and delay.status == "queued":  # said before a crash: make sure it went out
            await outgoing.send(self.res, event, event.message_id, delay)
        if reply is not None:  # answered before a crash: make sure it and its turn event went out
            target, _ = self.tutor.languages(await self._profile(learner_id))
            await outgoing.resend(self.res, event, learner_id, inbound_id, replies, target)
        if reply is None and amended == "answered" and event.kind == "edit":
            await self._edited_after_answer(event, learner_id, inbound_id)
            return
        operator = await takeover.holder(self.res.redis, learner_id)
        if reply is None and operator is not None:
            await self._held_turn(event, learner_id, inbound_id, operator)
        elif operator is None and not await self._later_queued(delivery):
            # Also after a recorded reply: a command answered before the messages it arrived behind leaves
            # them waiting (their turn deferred when no model could answer them); a retry answers them.
            await self._take_turn(event, learner_id)

    async def _notice(self, delivery: Delivery, event: SystemNotice) -> None:
        """WhatsApp's notice is applied, never answered; a message it made wait (see lifecycle.waiting_turn)
        is answered now."""
        learner_id = await lifecycle.notice(self.res, event)
        if learner_id is None or await self._later_queued(delivery):
            return
        if (waiting := await lifecycle.waiting_turn(self.res, event, learner_id)) is not None:
            await self._take_turn(waiting, learner_id)

    async def _edited_after_answer(self, event: InboundMessage, learner_id: uuid.UUID, inbound_id: int) -> None:
        """An edit of an answered message: acknowledged (the answer stands), its words checked again (shown only)."""
        sess = await session.load(self.res.redis, event.learner)
        target, native = self.tutor.languages(await self._profile(learner_id))
        row = Waiting(inbound_id, event.message_id, event.kind, event.text, event.payload)
        rechecked = [as_correction(found, native) for found in findings([event.text or ""], target)]
        text = render(TutorReply(reply=say("edit_seen", native), corrections=rechecked), native=native)
        said = Reply(text, Usage("command", route="edit"))
        await self._finish(event, learner_id, [row], sess, said)

    async def _held_turn(self, event: InboundMessage, learner_id: uuid.UUID, inbound_id: int, operator: str) -> None:
        """An operator holds this learner: the learner's own data, billing and reminder commands still run
        (taken one message at a time, never skipped for a later one); anything else is left to the operator,
        read, announced, and costs neither a model call nor quota."""
        sess = await session.load(self.res.redis, event.learner)
        row = Waiting(inbound_id, event.message_id, event.kind, event.text, event.payload)
        command = (await choices.command_of(self.res, learner_id, [row], sess, event)
                   if event.kind not in _NO_REPLY else None)
        run = command is not None and command.name in _WHILE_HELD
        async with self.res.pool.connection() as conn, conn.transaction():
            await takeover.hold_waiting(conn, learner_id, before=inbound_id if run else None)
        if run:  # alone: what came before it is the operator's
            await self._take_turn(event, learner_id)
            return
        self._mark_read(event, event.message_id, typing=False)
        if event.kind not in _NO_REPLY:
            await takeover.remember(self.res, event.learner,
                                    Said(role="user", text=event.text or f"[{event.kind}]", id=event.message_id))
        await takeover.announce(self.res.redis, learner_id, event, operator)

    async def _later_queued(self, delivery: Delivery) -> bool:
        """A later message of this learner is already on the stream: it will answer the whole burst."""
        return await self.res.bus.last_seq(delivery) > delivery.seq

    async def _take_turn(self, event: InboundMessage, learner_id: uuid.UUID) -> None:
        async with self.res.pool.connection() as conn:
            batch, stored, active = await turns.opening(conn, learner_id)
        if not batch:
            return
        self._mark_read(event, batch[-1].message_id)
        sess = await session.load(self.res.redis, event.learner)
        target, native = self.tutor.languages(stored)
        command = (await choices.command_of(self.res, learner_id, batch, sess, event)
                   or activities.claimed(active, batch[-1]))
        # A command is answered alone, never shown to the model; messages it arrived behind get their own tutor
        # turn after it, or before it when it asks a yes/no question (which must stay Charla's latest).
        tutored = batch if command is None else [] if command.name == "forget_confirm" else batch[:-1]
        asks = command is not None and command.name in ("forget", "cancel")
        try:
            if tutored and asks:
                await self._tutor_turn(event, learner_id, tutored, sess, stored, native)
            if command is not None:
                await self._command(event, learner_id, batch[-1:], sess, command, native, target)
            if tutored and not asks:
                after = stored if command is None else await self._profile(learner_id)  # a command may change it
                await self._tutor_turn(event, learner_id, tutored, sess, after, native)
        except AllProvidersFailed as exc:
            await self._defer(event, learner_id, (tutored or batch)[-1], native, exc)

    async def _tutor_turn(self, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                          stored: profile.Profile, native: str, topic_changed: bool = False,
                          step: tuple[Step, Commit] | None = None) -> None:
        """A turn for the model, if the learner's allowance has room (checked first: an exhausted quota costs
        no model call; counted when the reply is recorded, atomically)."""
        ent = await entitlements.entitlement(self.res.redis, self.res.pool, learner_id)
        async with self.res.pool.connection() as conn:
            room = await entitlements.peek(conn, learner_id, ent.premium, stored.timezone, utcnow(), self.res.settings)
            exercise = await practice.open_prompt(conn, learner_id) if room.allowed else None
        if not room.allowed:
            limited = outgoing.limit_reply(self.res.settings, room, learner_id, native)
            await self._finish(event, learner_id, batch, sess, limited)
            return
        reply = await self._patiently(event, learner_id, batch[-1], native,
                                      self._converse(learner_id, batch, sess, stored, topic_changed,
                                                     exercise[2] if exercise else None, step and step[0].tutor))
        if step is not None:  # a roleplay turn: the activity's words around the reply, its state with it
            activities.follow(step, reply)
        onboarding.offer(self.res.settings, reply, stored, learner_id, self.tutor.languages(stored))
        if reply.usage.provider != "canned":  # a note that could not be heard costs the learner nothing
            reply.charge = Charge(ent.premium, stored.timezone, len(batch), native)
        if exercise and exercise[1]:
            reply.practice = (exercise[0], exercise[1])
        if ent.premium and not ent.announced:
            reply.text = say("all_set", native) + "\n\n" + reply.text
            reply.announce = True
        await self._finish(event, learner_id, batch, sess, reply)

    async def _recall(self, learner_id: uuid.UUID, texts: list[str], sess: Session, topic_changed: bool) -> list[str]:
        """This learner's closest memories, when a session starts, the topic changes or they refer to the
        past (read after the session and the profile, so older context never overrides the present). A
        learner with no memories yet costs no embedding (~20 ms of CPU on the reply path)."""
        if self.embedder is None or not memories.worth_recalling(texts, not sess.messages, topic_changed):
            return []
        async with self.res.pool.connection() as conn:
            if not await memories.exist(conn, learner_id):
                return []
        query = await self.embedder.query(" ".join([*texts, sess.topic or ""]))
        async with self.res.pool.connection() as conn:
            found = await memories.search(conn, learner_id, query, self.res.settings.recall_k)
        return [f"({m.created_at:%d %b}) {m.content}" for m in found]

    async def _converse(self, learner_id: uuid.UUID, batch: list[Waiting], sess: Session, stored: profile.Profile,
                        topic_changed: bool = False, exercise: str | None = None, brief: str | None = None) -> Reply:
        target, native = self.tutor.languages(stored)
        texts = [row.text for row in batch if row.text]
        notes = [actions.cannot_use(row, native) for row in batch if row.kind not in _USABLE or not row.text]
        if not texts:
            return Reply("\n\n".join(dict.fromkeys(notes)), Usage("canned"))
        voiced = [(row.text, h) for row in batch if row.text and (h := spoken.Heard.of(row.payload)) is not None]
        heard = voiced[-1][1] if voiced else None
        recalled = await self._recall(learner_id, texts, sess, topic_changed)
        answer = await self.tutor.answer(texts, sess, stored, memories=recalled, exercise=exercise, brief=brief,
                                         spoken=spoken.prompt_note(heard) if heard else None,
                                         unclear=heard is not None and heard.low_confidence)
        heading = [spoken.quote(text, native) for text, _ in voiced]
        if heard is not None and heard.pronunciation is not None:
            heading.append(spoken.pronunciation_text(heard.pronunciation, native))
        text = "\n\n".join([*heading, _render(answer.reply, answer.demo, notes, native, stored.preferences.strictness)])
        voice = outgoing.voice_note(self.res.settings, answer.reply, target, spoken_turn=bool(voiced),
                                    wanted=stored.preferences.voice)
        slow = outgoing.slower(native) if voice and not voiced else []  # (buttons would lose the note's quote)
        return Reply(text, answer.usage, slow or wordbook.save_choices(answer.reply.new_vocabulary, native),
                     [x.model_dump() for x in answer.reply.corrections],
                     [w.model_dump() for w in answer.reply.new_vocabulary], answer.reply.voice_example,
                     answer.reply.topic, say=voice, done=answer.reply.done)

    async def _command(self, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                       command: commands.Command, native: str, target: str) -> None:
        if command.name == "forget_confirm":
            await self._forget(event, learner_id, native)
            return
        if command.name == "practice_start":  # the template's button opened the window: the exercise itself
            async with self.res.pool.connection() as conn:
                body = await practice.prompt_body(conn, learner_id, command.value)
            text = body or say("help", native, target=language_name(target, native))
            await self._finish(event, learner_id, batch, sess, Reply(text, Usage("command", route="practice")))
            return
        if command.name in ("cancel", "cancel_confirm", "cancel_keep", "resume"):
            await self._billing(event, learner_id, batch, sess, command.name, native)
            return
        if command.name in ("start", "step"):
            await self._activity(event, learner_id, batch, sess, command, native, target)
            return
        async with self.res.pool.connection() as conn, conn.transaction():  # the command's writes and its reply
            said = await actions.run(conn, learner_id, command, batch[-1].message_id, sess, native, target,
                                     self.res.settings)
            reply = Reply(said.text, Usage("command", route="command"), said.choices, documents=said.documents,
                          report=said.report)
            recorded = None if said.converse else await self._record(conn, event, learner_id, batch, reply)
        if recorded is None:  # (a topic: nothing was written, the tutor answers)
            stored = await self._profile(learner_id)
            await self._tutor_turn(event, learner_id, batch, sess, stored, native, topic_changed=True)
            return
        await self._hand_on(event, learner_id, batch, sess, reply, *recorded)

    async def _activity(self, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                        command: commands.Command, native: str, target: str) -> None:
        """A guided activity's step: its own answer, or a tutor turn with its brief (agents/activities.py)."""
        stored = await self._profile(learner_id)
        kind, step, commit = await activities.run(self.res, learner_id, batch[-1], sess, stored, (native, target),
                                                  command)
        if step.tutor is not None:
            await self._tutor_turn(event, learner_id, batch, sess, stored, native, step=(step, commit))
            return
        await self._finish(event, learner_id, batch, sess, Reply(step.text, Usage("command", route=kind), step.choices,
                                                                 say=step.say, slow=step.slow, commit=commit))

    async def _billing(self, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                       name: str, native: str) -> None:
        """Cancel (asked first when a subscription would stop renewing, done on the "yes"), or resume."""
        said = Reply("", Usage("command", route="command"))
        if name == "cancel" and await billing.renews(self.res.pool, learner_id):
            sess.awaiting = "cancel"
            said.text, said.choices = say("cancel_ask", native), actions.cancel_choices(native)
        elif name == "cancel_keep":
            sess.awaiting = None
            said.text = say("cancel_kept", native)
        else:
            sess.awaiting = None
            cancel = name != "resume"
            change = await billing.set_cancel(self.res.pool, self.stripe, learner_id, cancel)
            said.text = actions.billing_text("cancel" if cancel else "resume", change, native)
        await self._finish(event, learner_id, batch, sess, said)

    async def _forget(self, event: InboundMessage, learner_id: uuid.UUID, native: str) -> None:
        """Erase the learner; from here on they are new, and only this exchange is recorded for them. The
        stream purge runs last, up to where the streams ended before the confirmation was published."""
        secret = server_key(self.res.settings)
        async with self.res.pool.connection() as conn, conn.transaction():
            erased = await erasure.erase_rows(conn, learner_id, secret)
            learner_id = await learners.upsert(conn, event.identity, event.sent_at or event.at, secret=secret)
            newest = [Waiting(await messages.record_inbound(conn, learner_id, event), event.message_id, event.kind,
                              event.text, {})]
            reply = Reply(say("forgotten", native), Usage("command", route="command"))
            outbound, turn = await outgoing.record(conn, event, learner_id, newest, reply)
        if erased is not None:
            await erasure.forget_state(self.res, erased)
        until = await erasure.marks(self.res.bus)
        await outgoing.publish(self.res, event, newest, outbound, turn)
        if erased is not None:
            await erasure.purge_streams(self.res, erased, until)

    async def _profile(self, learner_id: uuid.UUID) -> profile.Profile:
        async with self.res.pool.connection() as conn:
            return await profile.load(conn, learner_id)

    async def _finish(self, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                      reply: Reply) -> None:
        """Record the reply and the turn (one transaction), hand it to the outbox, update the session."""
        async with self.res.pool.connection() as conn, conn.transaction():
            outbound, turn = await self._record(conn, event, learner_id, batch, reply)
        await self._hand_on(event, learner_id, batch, sess, reply, outbound, turn)

    async def _record(self, conn: Conn, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting],
                      reply: Reply) -> tuple[Outbound, TurnEvent]:
        """Inside the turn's transaction: its charge, its activity's writes, the reply and the turn."""
        if reply.charge is not None:
            await outgoing.charge(conn, self.res.settings, learner_id, reply)
        if reply.commit is not None:
            await reply.commit(conn)
        return await outgoing.record(conn, event, learner_id, batch, reply)

    async def _hand_on(self, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting], sess: Session,
                       reply: Reply, outbound: Outbound, turn: TurnEvent) -> None:
        """After commit: the session remembers the exchange, the reply and what follows it go out."""
        if reply.announce:
            await entitlements.invalidate(self.res.redis, learner_id)
        outgoing.remember(sess, batch, reply, self.res.settings.session_messages)
        await session.save(self.res.redis, event.learner, sess, self.res.settings.session_ttl_s)
        await outgoing.publish(self.res, event, batch, outbound, turn)
        if reply.spoken is not None and reply.say is not None:
            await outgoing.speak(self.res, event, reply.spoken, reply.say[1], slow=reply.slow)
        await outgoing.attachments(self.res, event, learner_id, reply)

    async def _defer(self, event: InboundMessage, learner_id: uuid.UUID, newest: Waiting, native: str,
                     exc: AllProvidersFailed) -> None:
        """No provider could answer: say so once, and retry the turn later (see retry_deferred)."""
        log.warning("learner %s: no provider could answer (%s); turn deferred", learner_id, exc)
        async with self.res.pool.connection() as conn, conn.transaction():
            attempts = await turns.defer(conn, learner_id, event, str(exc), self.res.settings.turn_retry_s)
        if attempts == 1:
            await outgoing.say_delay(self.res, event, learner_id, newest, native)

    async def _patiently(self, event: InboundMessage, learner_id: uuid.UUID, newest: Waiting, native: str,
                         answer: Awaitable[Reply]) -> Reply:
        """Await the model's answer; if it takes longer than CHARLA_PATIENCE_S (a slow provider, a timeout and
        a fallback), tell the learner once that the answer is coming, and keep waiting."""
        task = asyncio.ensure_future(answer)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.res.settings.patience_s)
            if not done:
                await outgoing.say_delay(self.res, event, learner_id, newest, native)
            return await task
        finally:
            task.cancel()  # only if this turn itself was cancelled (a shutdown): the model call goes with it

    def _mark_read(self, event: InboundMessage, message_id: str, *, typing: bool = True) -> None:
        """Blue ticks and "typing…" while the reply is prepared: beside the turn, not through the bus. Without
        `typing` (a held learner: a person answers, maybe not soon), only the blue ticks."""
        task = asyncio.create_task(mark_read(self.channels, event.provider, event.learner, message_id, typing=typing))
        self._receipts.add(task)
        task.add_done_callback(self._receipts.discard)


def _render(reply: TutorReply, demo: bool, notes: list[str], native: str, strictness: int) -> str:
    text = render(reply, demo=demo, native=native, strictness=strictness)
    return "\n\n".join([text, *dict.fromkeys(notes)]) if notes else text
