"""What each natural-language command does, and what Charla says back (in the learner's native language:
the sentences are in charla/locale, see charla.core.catalog)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents import study
from charla.core.catalog import N_, say
from charla.core.events import Choice
from charla.core.settings import Settings
from charla.progress import goals, report
from charla.store import lifecycle, profile
from charla.store.messages import Conn
from charla.store.profile import PracticeTime, Profile
from charla.store.session import Session
from charla.store.turns import Waiting
from charla.tutor import practice
from charla.tutor.commands import TOPICS, Command
from charla.tutor.prompt import category_name, language_name
from payments import billing
from voice import heard as spoken

_DAY_NAMES = (N_("day.mon"), N_("day.tue"), N_("day.wed"), N_("day.thu"), N_("day.fri"), N_("day.sat"),
              N_("day.sun"))

# Confirmations of a changed setting, by command name.
_CONFIRMATIONS = {"level": N_("level"), "native": N_("native"), "target": N_("target"), "timezone": N_("timezone"),
                  "reminders_off": N_("reminders_off"), "reminders_on": N_("reminders_on")}
_OPT = {"opt_out": N_("opted_out"), "opt_in": N_("opted_in")}
# What cancel/resume answers, by (command, billing outcome).
_BILLING = {("cancel", "free"): N_("cancel_free"), ("resume", "free"): N_("resume_free"),
            ("cancel", "subscription"): N_("cancel_subscription"),
            ("resume", "subscription"): N_("resume_subscription"),
            ("cancel", "one_off"): N_("cancel_one_off"), ("resume", "one_off"): N_("resume_one_off")}


@dataclass
class Said:
    """What a command answers with; `converse` asks for a tutoring turn after it (e.g. a topic was set)."""

    text: str = ""
    choices: list[Choice] = field(default_factory=list)
    converse: bool = False
    documents: list[tuple[str, str]] = field(default_factory=list)  # files sent after `text`: (reply part, caption)
    report: bool = False  # the weekly report's chart follows `text` as an image


async def run(conn: Conn, learner_id: uuid.UUID, command: Command, message_id: str, session: Session,
              native: str, target: str, settings: Settings) -> Said:
    """Carry out `command` (inside the turn's transaction) and say what was done."""
    name, value = command.name, command.value
    if name in study.NAMES:
        done = await study.run(conn, settings, learner_id, command, native)
        return Said(done.text, done.choices, documents=done.documents)
    if name == "help":
        return Said(say("help", native, target=language_name(target, native)))
    if name == "topics":
        return Said(say("topics", native), [Choice(id=f"topic:{t}", title=say(key, native))
                                            for t, key in TOPICS.items()])
    if name == "topic":
        session.topic = value
        return Said(converse=True)
    if name == "mistakes":
        return Said(await _mistakes(conn, learner_id, session, native))
    if name == "goal":
        return Said(await _goal(conn, learner_id, value, native))
    if name == "progress":
        stored, at = await profile.load(conn, learner_id), goals.now()
        return Said(report.compose(stored, await report.last_week(conn, learner_id, at), at, native), report=True)
    if name == "export":
        return Said(await _export(conn, learner_id, native), documents=[("export", say("export_file", native))])
    if name == "forget":
        session.awaiting = "forget"
        return Said(say("forget", native), [Choice(id="forget:yes", title=say("forget_yes", native)),
                                            Choice(id="forget:no", title=say("forget_no", native))])
    if name == "forget_cancel":
        session.awaiting = None
        return Said(say("kept", native))
    if name in ("opt_out", "opt_in"):  # STOP / START: everything proactive, reversible (replies go on)
        changed = await lifecycle.set_opted_out(conn, learner_id, name == "opt_out", "chat")
        # "start" from someone who never stopped is a greeting: tutored as words
        return Said(say(_OPT[name], native)) if changed or name == "opt_out" else Said(converse=True)
    return await _set(conn, learner_id, command, message_id, native)


async def _set(conn: Conn, learner_id: uuid.UUID, command: Command, message_id: str, native: str) -> Said:
    name, value = command.name, command.value

    def change(p: Profile) -> None:
        if name == "level":
            p.level = value
        elif name == "native":
            p.native_language = value
        elif name == "target":
            p.target_language = value
        elif name == "timezone":
            p.timezone = value
        elif name == "practice":
            p.practice = [PracticeTime(time=value, days=command.days)]
            p.reminders_paused = False
        elif name in ("reminders_off", "reminders_on"):
            p.reminders_paused = name == "reminders_off"
            p.paused_until = None if name == "reminders_on" else p.paused_until  # "resume practice" ends a pause
        p.confirm({"reminders_on": "reminders_paused", "reminders_off": "reminders_paused"}.get(name, name),
                  message_id)

    updated = await profile.update(conn, learner_id, change)
    lang = updated.native_language or native
    now = datetime.now(UTC)
    if name in ("native", "target"):
        return Said(say(_CONFIRMATIONS[name], lang, value=language_name(value, lang)))
    if name == "practice":
        zone = updated.timezone or practice.guess_timezone(await _phone(conn, learner_id)) or "UTC"
        await practice.set_schedule(conn, learner_id, value, command.days, zone, now)
        days = say("every_day", lang) if len(command.days) == 7 else ", ".join(say(_DAY_NAMES[d], lang)
                                                                                 for d in command.days)
        text = say("practice", lang, value=value, days=days, zone=zone)
        return Said(text + ("" if updated.timezone else say("guessed_zone", lang, zone=zone)))
    if name == "timezone":
        await practice.reschedule(conn, learner_id, value, now)
    if name in ("reminders_off", "reminders_on"):
        await practice.set_paused(conn, learner_id, name == "reminders_off", now)
    return Said(say(_CONFIRMATIONS[name], lang, value=value))


async def _goal(conn: Conn, learner_id: uuid.UUID, value: str, native: str) -> str:
    goal = goals.parse_goal(value)
    if goal is None:
        return say("goal.invalid", native)
    updated = await profile.update(conn, learner_id, lambda p: goals.set_goal(p, goal, goals.now()))
    return say("goal.set", native, goal=goals.describe(goal, native), zone=updated.timezone or "UTC")


async def _phone(conn: Conn, learner_id: uuid.UUID) -> str | None:
    row = await (await conn.execute("SELECT coalesce(wa_id, replace(twilio_id, 'whatsapp:', '')) FROM learners "
                                    "WHERE id = %s", (learner_id,))).fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def _mistakes(conn: Conn, learner_id: uuid.UUID, session: Session, native: str) -> str:
    """From the error map the memory agent keeps (counted from corrections), else this session's."""
    stored = await profile.load(conn, learner_id)
    lines = [f"• *{category_name(cat, native)}* ×{stat.count}"
             + (f": ~{stat.examples[-1].original}~ → {stat.examples[-1].corrected}" if stat.examples else "")
             for cat, stat in stored.top_errors(5)]
    if not lines:
        lines = [f"• *{category_name(cat, native)}* ×{n}"
                 for cat, n in sorted(session.errors.items(), key=lambda kv: -kv[1])[:5]]
    if not lines:
        return say("mistakes_none", native)
    return say("mistakes", native) + "\n" + "\n".join(lines)


async def _export(conn: Conn, learner_id: uuid.UUID, native: str) -> str:
    """Everything Charla keeps about the learner, readable on a phone (the profile, counts of the rest)."""
    p = await profile.load(conn, learner_id)
    row = await (await conn.execute(
        """SELECT (SELECT count(*) FROM messages WHERE learner_id = %s),
                  (SELECT count(*) FROM memories WHERE learner_id = %s),
                  (SELECT created_at FROM learners WHERE id = %s)""", (learner_id, learner_id, learner_id))).fetchone()
    messages_kept, memories_kept, since = row if row else (0, 0, None)
    since_day = f"{since:%Y-%m-%d}" if since else ""
    practice_times = ", ".join(say("export.practice_time", native, time=t.time, days=len(t.days)) for t in p.practice)
    facts = [(N_("export.name"), p.name), (N_("export.level"), profile.level_to_use(p)),
             (N_("export.native"), p.native_language and language_name(p.native_language, native)),
             (N_("export.learning"), p.target_language and language_name(p.target_language, native)),
             (N_("export.timezone"), p.timezone), (N_("export.goals"), "; ".join(p.goals)),
             (N_("export.likes"), ", ".join(p.topics)),
             (N_("export.practice"), practice_times + (say("export.paused", native) if p.reminders_paused else ""))]
    errors = ", ".join(f"{category_name(k, native)} ×{s.count}" for k, s in p.top_errors(8))
    lines = [say("export.title", native)] + [f"• {say(label, native)}: {value}" for label, value in facts if value]
    lines += [say("export.mistakes", native, mistakes=errors) if p.errors else say("export.mistakes_none", native),
              say("export.words", native, count=len(p.vocabulary)),
              say("export.stored", native, messages=messages_kept, memories=memories_kept, since=since_day)
              if since else "",
              say("export.erase", native)]
    return "\n".join(line for line in lines if line)


def cancel_choices(native: str) -> list[Choice]:
    """The yes/no buttons of the cancel question (the "yes" cancels only while it is the latest offer)."""
    return [Choice(id="cancel:yes", title=say("cancel_yes", native)),
            Choice(id="cancel:no", title=say("cancel_no", native))]


def billing_text(name: str, change: billing.Change, native: str) -> str:
    """What cancel/resume did (`name`), in the learner's language."""
    if change.outcome == "unavailable":
        return say("cancel_unavailable", native)
    until = f"{change.until:%Y-%m-%d}" if change.until else say("period_end", native)
    return say(_BILLING[name, change.outcome], native, until=until)


# Kinds Charla cannot use yet: the message id of each kind's name, as a learner would name it.
_CANNOT_USE = {"call": N_("kind.call"),
               "sticker": N_("kind.sticker"), "location": N_("kind.location"), "contacts": N_("kind.contacts"),
               "document": N_("kind.document"), "video": N_("kind.video"), "image": N_("kind.image")}
_OTHER_KIND = N_("kind.other")


def cannot_use(row: Waiting, native: str) -> str:
    """What Charla says to a message it cannot use: a voice note it could not hear, a sticker, a caption."""
    if row.kind == "audio":  # a voice note the voice agent could not turn into words
        heard = spoken.Heard.of(row.payload) or spoken.Heard(problem="corrupt")
        return spoken.problem_text(heard, native)
    what = say(_CANNOT_USE.get(row.kind, _OTHER_KIND), native)
    if row.text:
        return say("caption_only", native, what=what)
    return say("cannot_use", native, what=what)
