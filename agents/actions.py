"""What each natural-language command does, and what Charla says back (in the learner's native language
where it has the words: English and Spanish)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from charla.core.events import Choice
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import PracticeTime, Profile
from charla.store.session import Session
from charla.tutor import practice
from charla.tutor.commands import TOPICS, Command
from charla.tutor.prompt import CATEGORY_NAMES, language_name
from payments import billing

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

TEXTS: dict[str, dict[str, str]] = {
    "help": {
        "en": "I'm Charla, your {target} tutor. Just write (or send a voice note) and I'll answer, correct "
              "you and explain. You can also say:\n• *topics*, or *show me verbs*\n• *my level is B1*\n"
              "• *my native language is English* / *I want to learn Spanish*\n• *my timezone is Europe/Madrid*\n"
              "• *remind me at 8am* / *stop reminders*\n• *what are my mistakes?*\n• *delete my data*",
        "es": "Soy Charla, tu tutora de {target}. Escríbeme (o mándame una nota de voz) y te respondo, te "
              "corrijo y te explico. También puedes decir:\n• *temas*, o *muéstrame verbos*\n• *mi nivel es B1*\n"
              "• *mi idioma nativo es español* / *quiero aprender inglés*\n• *mi zona horaria es Europe/Madrid*\n"
              "• *recuérdame a las 8* / *para los recordatorios*\n• *mis errores*\n• *borra mis datos*"},
    "topics": {"en": "What shall we practise? Pick a topic:", "es": "¿Qué practicamos? Elige un tema:"},
    "level": {"en": "Got it: your level is *{value}*. I'll pitch my replies to it.",
              "es": "Entendido: tu nivel es *{value}*."},
    "native": {"en": "Noted: your native language is {value}. I'll explain in it.",
               "es": "Anotado: tu idioma nativo es el {value}. Te explicaré en él."},
    "target": {"en": "Great, let's practise {value}! Tell me about your day.",
               "es": "¡Genial, practiquemos {value}! Cuéntame qué tal tu día."},
    "timezone": {"en": "Your timezone is now *{value}*.", "es": "Tu zona horaria ahora es *{value}*."},
    "practice": {"en": "Saved: practice at *{value}* ({days}, {zone}). Say *stop reminders* any time.",
                 "es": "Guardado: práctica a las *{value}* ({days}, {zone}). "
                       "Di *para los recordatorios* cuando quieras."},
    "guessed_zone": {"en": " I guessed {zone} from your number: if that's wrong, say *my timezone is …*.",
                     "es": " He deducido {zone} por tu número: si no es así, di *mi zona horaria es …*."},
    "reminders_off": {"en": "Reminders paused. Say *resume reminders* to turn them back on.",
                      "es": "Recordatorios en pausa. Di *reanuda los recordatorios* para volver a activarlos."},
    "reminders_on": {"en": "Reminders are back on.", "es": "Los recordatorios vuelven a estar activos."},
    "mistakes_none": {"en": "I haven't noted any mistakes yet. Keep writing!",
                      "es": "Todavía no he anotado errores. ¡Sigue escribiendo!"},
    "mistakes": {"en": "Your most frequent mistakes:", "es": "Tus errores más frecuentes:"},
    "cancel_ask": {"en": "Cancel your subscription? It stops renewing; you keep premium until the end of the "
                         "period you paid for.",
                   "es": "¿Cancelo tu suscripción? Dejará de renovarse; sigues con premium hasta el final del "
                         "periodo pagado."},
    "cancel_yes": {"en": "Yes, cancel it", "es": "Sí, cancélala"},
    "cancel_no": {"en": "No, keep it", "es": "No, mantenla"},
    "cancel_kept": {"en": "Okay, your subscription stays as it is.", "es": "Vale, tu suscripción sigue igual."},
    "cancel_free": {"en": "You're on the free plan, so there is no subscription to cancel.",
                    "es": "Estás en el plan gratuito: no hay ninguna suscripción que cancelar."},
    "resume_free": {"en": "You're on the free plan: there is nothing to resume.",
                    "es": "Estás en el plan gratuito: no hay nada que reanudar."},
    "cancel_subscription": {"en": "Done: your subscription won't renew. You keep premium until {until}.",
                            "es": "Hecho: tu suscripción no se renovará. Sigues con premium hasta el {until}."},
    "resume_subscription": {"en": "Your subscription is back on and will renew as usual.",
                            "es": "Tu suscripción vuelve a estar activa y se renovará como siempre."},
    "cancel_one_off": {"en": "You paid once, so nothing will renew: your access stays as it is.",
                       "es": "Pagaste una sola vez, así que nada se renovará: tu acceso sigue igual."},
    "resume_one_off": {"en": "A one-off payment has no renewal, so there is nothing to resume.",
                       "es": "Un pago único no se renueva: no hay nada que reanudar."},
    "cancel_unavailable": {"en": "I couldn't reach the payment system just now, so nothing changed. "
                                 "Please try again in a few minutes.",
                           "es": "No he podido contactar con el sistema de pagos, así que no ha cambiado nada. "
                                 "Inténtalo de nuevo en unos minutos."},
    "free_used": {"en": "You've used your {limit} free messages 🎉 To keep practising with me, subscribe here: {link}",
                  "es": "Has usado tus {limit} mensajes gratis 🎉 Para seguir practicando conmigo, suscríbete aquí: "
                        "{link}"},
    "free_used_no_link": {"en": "You've used your {limit} free messages. Ask whoever runs Charla for access.",
                          "es": "Has usado tus {limit} mensajes gratis. Pide acceso a quien gestiona Charla."},
    "daily_limit": {"en": "That's {limit} messages today, the daily maximum. Let's continue tomorrow!",
                    "es": "Ya van {limit} mensajes hoy, el máximo diario. ¡Seguimos mañana!"},
    "all_set": {"en": "You're all set! Thanks for subscribing 🎉", "es": "¡Todo listo! Gracias por suscribirte 🎉"},
    "forget": {"en": "Delete everything I know about you (profile, messages, progress)? This cannot be undone.",
               "es": "¿Borro todo lo que sé de ti (perfil, mensajes, progreso)? No se puede deshacer."},
    "forget_yes": {"en": "Yes, delete it all", "es": "Sí, bórralo todo"},
    "forget_no": {"en": "No, keep it", "es": "No, mantenlo"},
    "forgotten": {"en": "Done: I deleted your profile, messages and progress. If you write again, we start fresh.",
                  "es": "Hecho: he borrado tu perfil, tus mensajes y tu progreso. "
                        "Si vuelves a escribir, empezamos de cero."},
    "kept": {"en": "Okay, I kept everything.", "es": "Vale, lo mantengo todo."},
    "export_file": {"en": "Here is everything I keep about you, as a JSON file: your profile, messages, "
                          "corrections, memories, practice and payments.",
                    "es": "Aquí tienes todo lo que guardo sobre ti, en un archivo JSON: tu perfil, tus mensajes, "
                          "correcciones, recuerdos, práctica y pagos."},
}


def say(key: str, lang: str, **values: str) -> str:
    texts = TEXTS[key]
    return texts.get(lang, texts["en"]).format(**values)


@dataclass
class Said:
    """What a command answers with; `converse` asks for a tutoring turn after it (e.g. a topic was set)."""

    text: str = ""
    choices: list[Choice] = field(default_factory=list)
    converse: bool = False
    document: str = ""  # the caption of the learner's data export, sent as a file after `text`


async def run(conn: Conn, learner_id: uuid.UUID, command: Command, message_id: str, session: Session,
              native: str, target: str) -> Said:
    """Carry out `command` (inside the turn's transaction) and say what was done."""
    name, value = command.name, command.value
    if name == "help":
        return Said(say("help", native, target=language_name(target, native)))
    if name == "topics":
        return Said(say("topics", native), [Choice(id=f"topic:{t}", title=t.capitalize()) for t in TOPICS])
    if name == "topic":
        session.topic = value
        return Said(converse=True)
    if name == "mistakes":
        return Said(await _mistakes(conn, learner_id, session, native))
    if name == "export":
        return Said(await _export(conn, learner_id), document=say("export_file", native))
    if name == "forget":
        session.awaiting = "forget"
        return Said(say("forget", native), [Choice(id="forget:yes", title=say("forget_yes", native)),
                                            Choice(id="forget:no", title=say("forget_no", native))])
    if name == "forget_cancel":
        session.awaiting = None
        return Said(say("kept", native))
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
        p.confirm({"reminders_on": "reminders_paused", "reminders_off": "reminders_paused"}.get(name, name),
                  message_id)

    updated = await profile.update(conn, learner_id, change)
    lang = updated.native_language or native
    now = datetime.now(UTC)
    if name in ("native", "target"):
        return Said(say(name, lang, value=language_name(value, lang)))
    if name == "practice":
        zone = updated.timezone or practice.guess_timezone(await _phone(conn, learner_id)) or "UTC"
        await practice.set_schedule(conn, learner_id, value, command.days, zone, now)
        days = "every day" if len(command.days) == 7 else ", ".join(_DAY_NAMES[d] for d in command.days)
        text = say("practice", lang, value=value, days=days, zone=zone)
        return Said(text + ("" if updated.timezone else say("guessed_zone", lang, zone=zone)))
    if name == "timezone":
        await practice.reschedule(conn, learner_id, value, now)
    if name in ("reminders_off", "reminders_on"):
        await practice.set_paused(conn, learner_id, name == "reminders_off", now)
    return Said(say(name, lang, value=value))


async def _phone(conn: Conn, learner_id: uuid.UUID) -> str | None:
    row = await (await conn.execute("SELECT coalesce(wa_id, replace(twilio_id, 'whatsapp:', '')) FROM learners "
                                    "WHERE id = %s", (learner_id,))).fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def _mistakes(conn: Conn, learner_id: uuid.UUID, session: Session, native: str) -> str:
    """From the error map the memory agent keeps (counted from corrections), else this session's."""
    stored = await profile.load(conn, learner_id)
    lines = [f"• *{CATEGORY_NAMES.get(cat, cat)}* ×{stat.count}"
             + (f": ~{stat.examples[-1].original}~ → {stat.examples[-1].corrected}" if stat.examples else "")
             for cat, stat in stored.top_errors(5)]
    if not lines:
        lines = [f"• *{CATEGORY_NAMES.get(cat, cat)}* ×{n}"
                 for cat, n in sorted(session.errors.items(), key=lambda kv: -kv[1])[:5]]
    if not lines:
        return say("mistakes_none", native)
    return say("mistakes", native) + "\n" + "\n".join(lines)


async def _export(conn: Conn, learner_id: uuid.UUID) -> str:
    """Everything Charla keeps about the learner, readable on a phone (the profile, counts of the rest)."""
    p = await profile.load(conn, learner_id)
    row = await (await conn.execute(
        """SELECT (SELECT count(*) FROM messages WHERE learner_id = %s),
                  (SELECT count(*) FROM memories WHERE learner_id = %s),
                  (SELECT created_at FROM learners WHERE id = %s)""", (learner_id, learner_id, learner_id))).fetchone()
    messages_kept, memories_kept, since = row if row else (0, 0, None)
    facts = [("Name", p.name), ("Level", p.level or p.level_inferred), ("Native language", p.native_language),
             ("Learning", p.target_language), ("Timezone", p.timezone), ("Goals", "; ".join(p.goals)),
             ("Likes", ", ".join(p.topics)),
             ("Practice", ", ".join(f"{t.time} ({len(t.days)} days/week)" for t in p.practice)
              + (" (paused)" if p.reminders_paused else ""))]
    lines = ["*Your data at Charla*"] + [f"• {label}: {value}" for label, value in facts if value]
    lines += [f"• Mistakes noted: {', '.join(f'{CATEGORY_NAMES.get(k, k)} ×{s.count}' for k, s in p.top_errors(8))}"
              if p.errors else "• Mistakes noted: none yet",
              f"• Words tracked: {len(p.vocabulary)}",
              f"• Messages stored: {messages_kept}; memories: {memories_kept}; learner since {since:%Y-%m-%d}"
              if since else "",
              "Say *delete my data* to erase all of it."]
    return "\n".join(line for line in lines if line)


def cancel_choices(native: str) -> list[Choice]:
    """The yes/no buttons of the cancel question (the "yes" cancels only while it is the latest offer)."""
    return [Choice(id="cancel:yes", title=say("cancel_yes", native)),
            Choice(id="cancel:no", title=say("cancel_no", native))]


def billing_text(name: str, change: billing.Change, native: str) -> str:
    """What cancel/resume did (`name`), in the learner's language."""
    key = "cancel_unavailable" if change.outcome == "unavailable" else f"{name}_{change.outcome}"
    until = f"{change.until:%Y-%m-%d}" if change.until else "the end of the paid period"
    return say(key, native, until=until)
