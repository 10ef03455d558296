"""What the conversation agent writes and hands on for a turn: the reply, its voice note, data export and
progress chart, recorded with the turn in the turn's transaction (with the day's progress toward the learner's
goal: counted once, as the turn is recorded once), then published to the outbox, the voice agent and the
memory agent under dedupe keys (a re-run after a crash publishes nothing twice)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from charla.channels.media import drop
from charla.core import constants as c
from charla.core.catalog import say
from charla.core.events import Choice, InboundMessage, OutboundMessage, SpeakRequest, TurnEvent, utcnow
from charla.core.runtime import Resources
from charla.core.settings import Settings
from charla.ops import export
from charla.progress import deliver, goals
from charla.store import messages, turns
from charla.store.messages import Conn, Outbound
from charla.store.session import Said, Session
from charla.store.turns import Usage, Waiting
from charla.tutor import practice, wordbook
from charla.tutor.activity import Commit
from charla.tutor.prompt import TutorReply
from payments import entitlements
from voice.heard import Heard


@dataclass(frozen=True)
class Charge:
    """What a tutor turn counts against the learner's allowance when its reply is recorded."""

    premium: bool
    timezone: str | None
    messages: int
    native: str


@dataclass
class Reply:
    text: str
    usage: Usage
    choices: list[Choice] = field(default_factory=list)
    corrections: list[dict[str, object]] = field(default_factory=list)
    vocabulary: list[dict[str, object]] = field(default_factory=list)
    voice_example: bool = False
    topic: str | None = None
    charge: Charge | None = None
    practice: tuple[int, str] | None = None  # (prompt id, item) of the practice exercise this turn answers
    say: tuple[str, str] | None = None  # (phrase, language) to send as a voice note after the text
    slow: bool = False  # the voice note is spoken slowly
    spoken: Outbound | None = None  # the voice note's recorded outbound message
    announce: bool = False  # starts with "you're all set" (the entitlement records it was said)
    documents: list[tuple[str, str]] = field(default_factory=list)  # (part, caption): files sent after the text
    attachments: list[tuple[str, Outbound]] = field(default_factory=list)  # their recorded outbound messages
    commit: Commit | None = None  # writes that commit with the reply (a guided activity's next state)
    done: bool = False  # the model judged a roleplay's goal reached (TutorReply.done)
    report: bool = False  # the progress chart follows the text as an image (`my progress`, a pending report)
    chart: Outbound | None = None  # the chart's recorded outbound message
    report_caption: str = ""  # the chart's caption (a pending weekly report's text)


async def record(conn: Conn, event: InboundMessage, learner_id: uuid.UUID, batch: list[Waiting],
                  reply: Reply) -> tuple[Outbound, TurnEvent]:
    """Record the reply and the turn; returns the reply and the turn's event (published after commit)."""
    newest, usage = batch[-1], reply.usage
    await _progress(conn, learner_id, batch, reply)
    outbound = await messages.record_reply(conn, learner_id, event.provider, newest.message_id, newest.id,
                                           reply.text, answers=False, choices=reply.choices)
    if reply.say is not None:
        reply.spoken = await messages.record_reply(conn, learner_id, event.provider, newest.message_id,
                                                   newest.id, reply.say[0], "voice", answers=False, kind="voice")
    for part, caption in reply.documents:
        reply.attachments.append((part, await messages.record_reply(
            conn, learner_id, event.provider, newest.message_id, newest.id, caption, part, answers=False,
            kind="document")))
    if reply.report:
        reply.chart = await messages.record_reply(conn, learner_id, event.provider, newest.message_id, newest.id,
                                                  reply.report_caption, "report", answers=False, kind="image")
    total_ms = max(0, round((utcnow() - event.at).total_seconds() * 1000))
    turn_id = await turns.record(conn, learner_id, newest.id, [row.id for row in batch], usage, total_ms,
                                 reply.corrections, reply.vocabulary, reply.voice_example)
    turn = TurnEvent(learner=event.learner, turn_id=turn_id, learner_id=str(learner_id),
                     message_ids=[row.message_id for row in batch],
                     text="\n".join(row.text or "" for row in batch), reply=reply.text,
                     corrections=reply.corrections, vocabulary=reply.vocabulary, llm=usage.provider,
                     model=usage.model, route=usage.route, input_tokens=usage.input_tokens,
                     output_tokens=usage.output_tokens, cost_usd=usage.cost_usd, total_ms=total_ms,
                     voice_example=reply.voice_example)
    return outbound, turn


async def _progress(conn: Conn, learner_id: uuid.UUID, batch: list[Waiting], reply: Reply) -> None:
    """Count the turn toward the daily goal; its streak news ends the reply, a waiting weekly report follows."""
    heard = [h.seconds for row in batch if (h := Heard.of(row.payload)) is not None and not h.problem]
    if reply.charge is not None and not reply.report and await deliver.count_quietly(
            conn, learner_id, goals.now(), reply.charge.timezone, messages=len(batch),
            exercises=int(reply.practice is not None), voice_seconds=sum(heard)):
        return  # (a tutor turn of a learner without a goal: nothing to add to the reply)
    native = reply.charge.native if reply.charge else "en"
    counted = await deliver.count_turn(conn, learner_id, goals.now(), messages=len(batch),
                                       exercises=int(reply.practice is not None), voice_seconds=sum(heard),
                                       fallback_native=native)
    reply.text = "\n\n".join([reply.text, *counted.lines]) if counted.lines else reply.text
    if counted.report:
        reply.report, reply.report_caption = True, counted.report
    elif reply.report:
        reply.report_caption = reply.report_caption or deliver.chart_title(counted.native)


async def publish(res: Resources, event: InboundMessage, batch: list[Waiting], outbound: Outbound,
                   turn: TurnEvent) -> None:
    await send(res, event, batch[-1].message_id, outbound)
    await res.bus.publish(c.STREAM_TURNS, turn, dedupe_key=f"turn:{turn.turn_id}")


async def publish_turn(res: Resources, inbound_id: int, learner: str) -> None:
    async with res.pool.connection() as conn:
        turn = await turns.event_of(conn, inbound_id, learner)
    if turn is not None:  # deduplicated: a no-op when it was published before the crash
        await res.bus.publish(c.STREAM_TURNS, turn, dedupe_key=f"turn:{turn.turn_id}")


async def send(res: Resources, event: InboundMessage, reply_to: str, outbound: Outbound) -> None:
    message = OutboundMessage(
        id=f"out-{outbound.outbound_id}", learner=event.learner, outbound_id=str(outbound.outbound_id),
        provider=event.provider, to=event.identity, text=outbound.body, reply_to=reply_to,
        via=event.payload.get("to"), kind="choices" if outbound.choices else "text", choices=outbound.choices)
    await res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{outbound.outbound_id}")


async def speak(res: Resources, event: InboundMessage, voice: Outbound, language: str, *, slow: bool = False) -> None:
    """Ask the voice agent to say `voice` (it hands the note to the sender); deduplicated per message. (A
    re-run after a crash speaks it at normal speed: the recorded message does not keep `slow`.)"""
    request = SpeakRequest(id=f"speak-{voice.outbound_id}", learner=event.learner,
                           outbound_id=str(voice.outbound_id), provider=event.provider, to=event.identity,
                           via=event.payload.get("to"), text=voice.body, language=language, slow=slow)
    await res.bus.publish(c.STREAM_VOICE, request, dedupe_key=f"speak:{voice.outbound_id}")


async def _data_export(res: Resources, learner_id: uuid.UUID) -> tuple[bytes, str]:
    async with res.pool.connection() as conn:
        return export.dumps(await export.export(conn, learner_id, redis=res.redis)), export.FILENAME


async def _words(res: Resources, learner_id: uuid.UUID) -> list[wordbook.Entry]:
    async with res.pool.connection() as conn:
        return await wordbook.entries(conn, learner_id, utcnow())


async def _anki(res: Resources, learner_id: uuid.UUID) -> tuple[bytes, str]:
    return wordbook.anki(await _words(res, learner_id), "Charla"), wordbook.APKG


async def _csv(res: Resources, learner_id: uuid.UUID) -> tuple[bytes, str]:
    return wordbook.csv_bytes(await _words(res, learner_id)), wordbook.CSV


# The files a reply may carry, by reply part: each made when it is sent (after the reply was recorded).
DOCUMENTS: dict[str, Callable[[Resources, uuid.UUID], Awaitable[tuple[bytes, str]]]] = {
    "export": _data_export, "words_apkg": _anki, "words_csv": _csv}


async def send_document(res: Resources, event: InboundMessage, learner_id: uuid.UUID, part: str,
                        document: Outbound) -> None:
    """Make the reply part's file now (the data export then holds this exchange too), keep it for
    CHARLA_EXPORT_TTL_S and hand it to the sender; deduplicated per message (a re-run's unused copy is dropped)."""
    data, filename = await DOCUMENTS[part](res, learner_id)
    token = await export.keep(res.redis, learner_id, data, res.settings.export_ttl_s)
    message = OutboundMessage(
        id=f"out-{document.outbound_id}", learner=event.learner, outbound_id=str(document.outbound_id),
        provider=event.provider, to=event.identity, text=document.body, via=event.payload.get("to"),
        kind="document", document=token, filename=filename)
    if not await res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{document.outbound_id}"):
        await drop(res.redis, f"doc:{token}")


async def attachments(res: Resources, event: InboundMessage, learner_id: uuid.UUID, reply: Reply) -> None:
    """What follows the reply's text once it is recorded: its files (the data export, the wordbook), the
    progress chart."""
    for part, attached in reply.attachments:
        await send_document(res, event, learner_id, part, attached)
    if reply.chart is not None:
        await send_chart(res, event, learner_id, reply.chart)


async def send_chart(res: Resources, event: InboundMessage, learner_id: uuid.UUID, chart: Outbound) -> None:
    """Render the learner's progress chart and hand it to the sender as an image (deduplicated per message)."""
    token = await deliver.keep_chart(res.pool, res.redis, learner_id, goals.now(),
                                     res.settings.default_native_language, res.settings.export_ttl_s)
    message = OutboundMessage(
        id=f"out-{chart.outbound_id}", learner=event.learner, outbound_id=str(chart.outbound_id),
        provider=event.provider, to=event.identity, text=chart.body, via=event.payload.get("to"),
        kind="image", image=token)
    if not await res.bus.publish(c.STREAM_OUTBOX, message, dedupe_key=f"outbox:{chart.outbound_id}"):
        await drop(res.redis, f"img:{token}")


async def say_delay(res: Resources, event: InboundMessage, learner_id: uuid.UUID, newest: Waiting, native: str) -> None:
    """The honest delay message, at most once for the learner's newest message."""
    async with res.pool.connection() as conn, conn.transaction():
        if "delay" in await messages.replies(conn, newest.id):
            return
        delay = await messages.record_reply(conn, learner_id, event.provider, newest.message_id, newest.id,
                                            say("delay", native), "delay", answers=False)
    await send(res, event, newest.message_id, delay)


def voice_note(settings: Settings, reply: TutorReply, target: str, *, spoken_turn: bool,
               wanted: bool = True) -> tuple[str, str] | None:
    """What to speak after the text: the model's pronunciation example, else (for a learner who spoke)
    the new words. Nothing when voice replies are off (for everyone, or not `wanted` by this learner)."""
    if not settings.voice_replies or not wanted:
        return None
    if reply.say and reply.say.strip():
        return reply.say.strip(), target
    if spoken_turn and reply.new_vocabulary:
        return ". ".join(w.word for w in reply.new_vocabulary[:4]), target
    return None


SLOWER = "slow:again"  # the button under a spoken example: the last phrase again, slower (agents/speaking.py)


def slower(native: str) -> list[Choice]:
    """The "slower" button offered under a spoken example."""
    return [Choice(id=SLOWER, title=say("slow.button", native))]


def limit_reply(settings: Settings, verdict: entitlements.Verdict, learner_id: uuid.UUID, native: str) -> Reply:
    """The short reply once the free quota or the day's messages are used up (no model involved)."""
    if verdict.plan == "paid":
        text = say("daily_limit", native, limit=str(verdict.limit))
    elif link := entitlements.payment_link(settings, learner_id):
        text = say("free_used", native, limit=str(verdict.limit), link=link)
    else:
        text = say("free_used_no_link", native, limit=str(verdict.limit))
    return Reply(text, Usage("limit", route=verdict.plan))


async def charge(conn: Conn, settings: Settings, learner_id: uuid.UUID, reply: Reply) -> None:
    """Count the turn's messages in the reply's transaction; if another replica used the last of the
    allowance meanwhile, the learner gets the limit reply instead of the model's."""
    charge = reply.charge
    assert charge is not None
    verdict = await entitlements.admit(conn, learner_id, charge.premium, charge.messages, charge.timezone,
                                       utcnow(), settings)
    if not verdict.allowed:
        limited = limit_reply(settings, verdict, learner_id, charge.native)
        reply.text, reply.usage, reply.corrections, reply.vocabulary = limited.text, limited.usage, [], []
        reply.say = None
        reply.announce = False
    elif reply.announce:
        await entitlements.mark_announced(conn, learner_id)
    if verdict.allowed and reply.practice is not None:  # grade the practice answer into its FSRS card
        prompt_id, item = reply.practice
        await practice.review(conn, learner_id, item, practice.rating_for(item, reply.corrections), utcnow())
        await practice.answered(conn, prompt_id)


async def resend(res: Resources, event: InboundMessage, learner_id: uuid.UUID, inbound_id: int,
                 replies: dict[str, Outbound], target: str) -> None:
    """A turn answered before a crash: make sure its reply, voice note, export and turn event went out
    (each deduplicated, so what did go out is not sent twice)."""
    await send(res, event, event.message_id, replies["reply"])
    if (voice := replies.get("voice")) is not None and voice.status == "queued":
        await speak(res, event, voice, target)
    for part in DOCUMENTS:
        if (document := replies.get(part)) is not None and document.status == "queued":
            await send_document(res, event, learner_id, part, document)
    if (chart := replies.get("report")) is not None and chart.status == "queued":
        await send_chart(res, event, learner_id, chart)
    await publish_turn(res, inbound_id, event.learner)


def remember(sess: Session, batch: list[Waiting], reply: Reply, keep: int) -> None:
    """What the session keeps of a recorded exchange: the messages, the mistakes, the topic, what was offered."""
    for row in batch:
        sess.add(Said(role="user", text=row.text or f"[{row.kind}]", id=row.message_id), keep)
    sess.add(Said(role="assistant", text=reply.text), keep)
    for fix in reply.corrections:
        sess.errors[str(fix.get("category", "other"))] = sess.errors.get(str(fix.get("category", "other")), 0) + 1
    sess.topic = reply.topic or sess.topic
    sess.offered, sess.spoken = [choice.id for choice in reply.choices], reply.say or sess.spoken
    if reply.usage.provider != "command":
        sess.awaiting = None
        sess.repeat = reply.say[0] if reply.say else None
