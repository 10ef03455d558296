"""Natural-language commands in English and Spanish: no menus, no slash syntax needed.

A whole message must read as a command ("set my level to B1", "mi nivel es B1", "remind me at 8am",
"what are my mistakes?"); a sentence that merely contains such words is conversation. Recognising is
pure and fast (regular expressions), so it runs before any model is asked.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, field
from functools import cache

from charla.core.catalog import N_
from charla.store.profile import CEFR

_LANGS = {"spanish": "es", "espanol": "es", "castellano": "es", "english": "en", "ingles": "en",
          "french": "fr", "frances": "fr", "german": "de", "aleman": "de", "italian": "it", "italiano": "it",
          "portuguese": "pt", "portugues": "pt", "dutch": "nl", "catalan": "ca"}
# The topics offered, in order, with the message id of each one's title.
TOPICS = {"verbs": N_("topic.verbs"), "food": N_("topic.food"), "travel": N_("topic.travel"), "work": N_("topic.work"),
          "family": N_("topic.family"), "hobbies": N_("topic.hobbies"), "health": N_("topic.health"),
          "shopping": N_("topic.shopping")}
_TOPIC_WORDS = {"verbos": "verbs", "comida": "food", "cocina": "food", "cooking": "food", "viajes": "travel",
                "viajar": "travel", "trabajo": "work", "familia": "family", "salud": "health", "compras": "shopping",
                "aficiones": "hobbies"}
_DAYS = {"weekdays": [0, 1, 2, 3, 4], "entre semana": [0, 1, 2, 3, 4], "weekends": [5, 6],
         "fines de semana": [5, 6], "every day": list(range(7)), "daily": list(range(7)),
         "todos los dias": list(range(7)), "cada dia": list(range(7))}


@dataclass(frozen=True)
class Command:
    name: str  # help, topics, topic, level, native, target, timezone, practice, reminders_off, reminders_on,
    #            mistakes, cancel, cancel_confirm, cancel_keep, resume, export, forget, forget_confirm,
    #            forget_cancel, opt_out, opt_in, goal ("5 messages"), progress; start (value: an activity's kind),
    #            step (value: a tapped choice)
    value: str = ""
    days: list[int] = field(default_factory=list)
    arg: str = ""  # what a "start" asked for ("missions cafe" -> "cafe")


def fold(text: str) -> str:
    """Lower case, accents and punctuation at the ends removed: "¿Qué?" -> "que"."""
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return " ".join(plain.strip(" \t\n¿?¡!.,;:").split())


_SIMPLE: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(pattern)) for name, pattern in (
    ("opt_out", r"(stop|parar|baja)"),  # the words WhatsApp users send to stop business messages
    ("opt_in", r"(start|resume|reanudar)"),
    ("help", r"(/?help|/?ayuda|menu|commands|comandos|what can you do|que puedes hacer|como funciona(s)?)"),
    ("topics", r"(/?topics|/?temas|(show|list) (me )?(the )?topics|(que|cuales) temas( hay)?|"
               r"what (can|should) (we|i) (talk about|practi[cs]e))"),
    ("mistakes", r"((what are|show( me)?|list) my (mistakes|errors)|(what|which) mistakes do i make( most)?|"
                 r"my mistakes|(cuales son |muestrame )?mis errores|que errores (cometo|tengo))"),
    ("reminders_off", r"(stop|pause|no more|turn off|disable) (the )?(reminders|practice|notifications)|"
                      r"(para|deten|pausa|desactiva)( los)? (recordatorios|avisos)|no mas recordatorios"),
    ("reminders_on", r"(resume|restart|turn on|enable) (the )?(reminders|practice|notifications)|"
                     r"(reanuda|activa)( los)? (recordatorios|avisos)"),
    ("cancel", r"(cancel|unsubscribe|cancelar|darme de baja|cancel my (subscription|plan)|"
               r"cancela(r)? (mi )?(suscripcion|plan)|i want to cancel|quiero cancelar)"),
    ("resume", r"(resume( my)? (subscription|plan)|reanudar( mi)? (suscripcion|plan)|undo cancel(lation)?)"),
    ("export", r"(send|give|show|export)( me)? (all )?my data|export|what do you know about me|"
               r"(mandame|enviame|dame|exporta|muestrame) (todos )?mis datos|que sabes de mi"),
    ("progress", r"(show( me)? )?my progress|how am i doing|(muestrame |ver )?mi progreso|como voy"),
    ("forget", r"(delete|erase|remove|wipe) (all )?my data|forget (about )?me|(borra|elimina)(r)? (todos )?mis datos|"
               r"olvidame|delete my account|borra mi cuenta"),
)]
# The learner's settings said in plain words (folded), by the choice id that sets the same
# (charla.journey.preferences); "explanations:in" ends with a language's name ("explain it in detail" is
# conversation).
SETTING_PHRASES = {
    "strictness:1": r"(correct( me)? )?only (the )?(important|big|serious|major|real) (mistakes|errors)|"
                    r"(do not|don't|dont) correct (every|each) (little|small|minor) (mistake|thing|error)|"
                    r"(corrige(me)? )?solo (los )?errores (importantes|graves)|corrige(me)? solo lo importante|"
                    r"no (me )?corrijas (todo|cada detalle)",
    "strictness:2": r"(correct me normally|normal corrections|usual corrections|correcciones normales|"
                    r"corrigeme normal)",
    "strictness:3": r"correct (me on )?everything|correct all (my )?(mistakes|errors)|correct (the )?accents( too)?|"
                    r"(corrige(me)?|corregir) todo|corrige(me)? (tambien )?(los )?acentos",
    "explanations:native": r"explain in my (own |native )?language|explica(me)? en mi (idioma|lengua)( materna)?",
    "explanations:mixed": r"mixed explanations|explicaciones mixtas",
    "explanations:in": r"((explain|explanations?)( it| things)? in|(explica(me)?|explicaciones) en) "
                       r"(" + "|".join(_LANGS) + ")",
    "length:short": r"short(er)? (replies|answers|messages)|be (more )?brief|respuestas (mas )?cortas|"
                    r"mensajes (mas )?cortos|se (mas )?breve",
    "length:normal": r"normal (length )?(replies|answers|messages)|respuestas normales|mensajes normales",
    "length:long": r"long(er)? (replies|answers|messages)|respuestas (mas )?largas|mensajes (mas )?largos",
    "voice:off": r"no (more )?(voice notes|voice messages|voice replies|audio)|(stop|turn off|disable) (the )?"
                 r"(voice notes|voice messages|voice replies)|sin (notas de voz|audios)|"
                 r"no (mas )?(audios|notas de voz)|"
                 r"(quita|desactiva)( los| las)? (audios|notas de voz)",
    "voice:on": r"(send( me)?|turn on|enable) (the )?(voice notes|voice messages|voice replies)|"
                r"voice (notes|replies) on|(activa|mandame|enviame)( los| las)? (audios|notas de voz)",
}
# Commands that start a guided activity (agents/activities.py): the activity's kind, and the whole message
# (folded) as a pattern; its optional group `arg` is handed to the activity.
_START_WORDS: tuple[tuple[str, str], ...] = (
    ("placement", r"test my level|(a |the )?(placement|level) test|placement|check my level|"
                  r"(take|do|start) (a|the) (placement|level) test|(hazme|quiero hacer) (una|la) prueba de nivel|"
                  r"(una |la )?(prueba|test|examen) de nivel|(?P<arg>what(')?s my level|what is my level|"
                  r"(cual|que) es mi nivel)"),
    ("placement", r"(?P<arg>continue|resume|continuar|seguir|sigue|sigamos)( with)?( the| my| el| la| con el| con la)? "
                  r"(test|placement|prueba|examen|level test)"),
    ("placement", r"(?P<arg>stop|quit|end|leave|skip|salir del|salir de la|parar|dejar|terminar)( the| el| la)? "
                  r"(test|placement|prueba|examen|level test)"),
    ("settings", r"/?settings|my settings|(my )?preferences|(mis )?ajustes|(mis )?preferencias|configuracion"),
    ("settings", "(?P<arg>" + "|".join(f"(?:{pattern})" for pattern in SETTING_PHRASES.values()) + ")"),
    ("mission", r"(/?missions?|mision(es)?|missao|missoes|(let['’]?s )?role ?play|juegos? de rol|"
                r"(hagamos|jugamos) un juego de rol|(show me )?the missions|(muestrame )?las misiones)"
                r"( (?P<arg>[\w']+( [\w']+){0,2}))?"),
    ("dictation", r"((let'?s do |start |i want |quiero (hacer )?|hagamos )?(an? |un )?(dictation|dictado)|"
                  r"listening practice|practi[cs]e listening|practica de escucha|practicar (la )?escucha)"
                  r"( (?P<arg>[abc][12]))?"),
    ("listening", r"((a |una )?(listening )?comprehension( practice| questions| quiz)?|"
                  r"listening( quiz| questions| test)?|comprension (auditiva|oral)|preguntas de (comprension|escucha))"
                  r"( (?P<arg>[abc][12]))?"),
    ("speak", r"(let(')?s |i want to |can we )?(practi[cs]e (my )?(speaking|pronunciation)|read (something )?aloud|"
              r"speaking (practice|challenge)|(quiero )?practicar (la )?(pronunciacion|conversacion oral)|"
              r"quiero hablar|leer en voz alta|reto de (lectura|pronunciacion))( please| por favor)?"),
    ("slow", r"((can you |could you )?(say|read) (it|that) (again )?(more )?(slower|slowly)|slower( please)?|"
             r"more slowly|(mas )?despacio( por favor)?|(dilo|repitelo|repite|habla) (mas )?(despacio|lento)|"
             r"mas lento( por favor)?)"),
)
_STARTS = [(kind, re.compile(pattern)) for kind, pattern in _START_WORDS]
_LEVEL = re.compile(r"(set )?(my )?level( is| to|:)? (?P<v>[abc][12])|(mi )?nivel( es|:)? (?P<w>[abc][12])|"
                    r"i(')?m (an? )?(?P<x>[abc][12])( level)?|soy (de )?(nivel )?(?P<y>[abc][12])")
_NATIVE = re.compile(r"(my )?native language is (?P<v>\w+)|i(')?m a native (?P<w>\w+) speaker|"
                     r"(mi )?(idioma|lengua) (nativ[oa]|materna) es (el )?(?P<x>\w+)|native: ?(?P<y>\w+)")
_TARGET = re.compile(r"i (want to|would like to|wanna) (learn|practi[cs]e) (?P<v>\w+)|teach me (?P<w>\w+)|"
                     r"quiero (aprender|practicar) (el )?(?P<x>\w+)|ensename (el )?(?P<y>\w+)|learn: ?(?P<z>\w+)")
_TIMEZONE = re.compile(r"(my )?time ?zone is (?P<v>[\w/+\- ]+)|(mi )?zona horaria es (?P<w>[\w/+\- ]+)|"
                       r"i(')?m in (?P<x>[\w ]+)|(i )?live in (?P<y>[\w ]+)|estoy en (?P<z>[\w ]+)|"
                       r"vivo en (?P<u>[\w ]+)")
_TOPIC = re.compile(r"(show me|teach me|let(')?s (talk about|practi[cs]e)|practi[cs]e|muestrame|ensename|"
                    r"hablemos de|practiquemos|quiero practicar) (the |los |las |el |la )?(?P<v>\w+)")
_PRACTICE = re.compile(r"(remind me|practi[cs]e|recuerdame|avisame|practicar)( (?P<days>weekdays|weekends|every day|"
                       r"daily|entre semana|fines de semana|todos los dias|cada dia))? (at|a las|a la) "
                       r"(?P<h>\d{1,2})(:(?P<m>\d{2}))? ?(?P<ampm>am|pm|a\.m|p\.m)?"
                       r"( (?P<days2>weekdays|weekends|every day|daily|entre semana|fines de semana|todos los dias|"
                       r"cada dia))?")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "un": 1, "una": 1, "uno": 1, "two": 2, "dos": 2, "three": 3, "tres": 3,
            "four": 4, "cuatro": 4}
_PAUSE = re.compile(r"(pause|stop|hold) (the |my )?(practice|reminders)( for)? (?P<n>\d{1,3}|\w+) "
                    r"(?P<unit>days?|weeks?)|"
                    r"(pausa(r)?|para(r)?|deten(er)?) (la |mi )?(practica|los recordatorios)( por| durante)? "
                    r"(?P<n2>\d{1,3}|\w+) (?P<unit2>dias?|semanas?)")
_WORDS = [(name, re.compile(pattern)) for name, pattern in (
    ("my_words", r"((show|list)( me)? )?my (words|wordbook|saved words)|(muestrame |ensename )?mis palabras"),
    ("export_words", r"(export|send|give)( me)? my (words|wordbook)( to anki)?|(exporta(r)?|mandame|enviame|dame) "
                     r"mis palabras( a anki)?"),
)]
# "save X" / "guarda X" alone; "keep" and "add" ("keep going", "add salt") only with "the word" or "to my words".
# A pronoun or an article after the verb is a sentence ("save me a seat", "save the date"), not a word to keep.
_WORD = r"(?!(my|mi|mis|me|it|this|that|them|us|you|him|her|the|a|an|some|el|la|lo|los|las|un|una|te|nos|se)\b)" \
        r"[^\W\d_][\w' -]{0,40}?"
_TO_WORDS = r"( to my (words|wordbook)| a mis palabras)"
_SAVE = re.compile(rf"(save|guarda(r)?|apunta(r)?)( the word| la palabra)? (?P<w>{_WORD}){_TO_WORDS}?|"
                   rf"(keep|add|anade|añade)( the word| la palabra) (?P<x>{_WORD}){_TO_WORDS}?|"
                   rf"(keep|add|anade|añade) (?P<y>{_WORD}){_TO_WORDS}")
_GOAL = re.compile(r"((set )?my (daily )?goal( is| to|:)?|goal:?|(mi )?meta( diaria)?( es|:)?) (?P<n>\d{1,3}) "
                   r"(?P<u>messages?|exercises?|minutes?( of (voice|speaking|audio))?|mensajes?|ejercicios?|"
                   r"minutos?( de (voz|audio|hablar))?)( (a|per|each|al|por|cada) (day|dia))?")
_GOAL_UNITS = {"mess": "messages", "mens": "messages", "exer": "exercises", "ejer": "exercises", "minu": "voice"}
_YES = re.compile(r"(1|yes|y|si|yes,? delete( everything| it)?|si,? borra(lo| todo)?|confirm|confirmo)")
_NO = re.compile(r"(2|no|nope|cancel|keep( it)?|no,? keep( it| my data)?|no,? gracias|mantener)")
# The yes/no questions a message may answer, and the commands of their yes and no.
_QUESTIONS = {"forget": ("forget_confirm", "forget_cancel"), "cancel": ("cancel_confirm", "cancel_keep")}


def parse(text: str, *, awaiting: str | None = None) -> Command | None:
    """The command `text` expresses, or None when it is conversation. `awaiting` is a pending question
    ("forget": delete-my-data confirmation, "cancel": stop the subscription) this message may answer."""
    folded = fold(text)
    if not folded or len(folded) > 80:
        return None
    if awaiting in _QUESTIONS:
        yes, no = _QUESTIONS[awaiting]
        if _YES.fullmatch(folded):
            return Command(yes)
        if _NO.fullmatch(folded) and not (awaiting == "cancel" and folded == "cancel"):  # "cancel": ask again
            return Command(no)
    for name, pattern in _SIMPLE + _WORDS:
        if pattern.fullmatch(folded):
            return Command(name)
    for kind, pattern in _STARTS:
        if m := pattern.fullmatch(folded):
            return Command("start", kind, arg=m.groupdict().get("arg") or "")
    return _valued(folded) or _study(folded, text)


def _study(folded: str, text: str) -> Command | None:
    """A timed pause of practice ("pause practice for 2 weeks") or a word to save ("save cansado"), whose
    accents are kept from the original `text`."""
    if m := _PAUSE.fullmatch(folded):
        count, unit = m.group("n") or m.group("n2"), m.group("unit") or m.group("unit2")
        n = int(count) if count.isdigit() else _NUMBERS.get(count, 0)
        days = n * (7 if unit.startswith(("week", "semana")) else 1)
        return Command("pause", str(days)) if 0 < days <= 365 else None
    plain = " ".join(text.lower().strip(" \t\n¿?¡!.,;:").split())
    if m := _SAVE.fullmatch(plain):
        return Command("save", m.group("w") or m.group("x") or m.group("y"))
    return None


def language_code(name: str) -> str | None:
    """A language's code from its (folded) name in English or Spanish: "espanol" -> "es"."""
    return _LANGS.get(name)


def _valued(folded: str) -> Command | None:
    if (m := _LEVEL.fullmatch(folded)) and (v := _group(m)).upper() in CEFR:
        return Command("level", v.upper())
    if (m := _NATIVE.fullmatch(folded)) and (code := _LANGS.get(_group(m))):
        return Command("native", code)
    if (m := _TARGET.fullmatch(folded)) and (code := _LANGS.get(_group(m))):
        return Command("target", code)
    if m := _PRACTICE.fullmatch(folded):
        return _practice(m)
    if m := _GOAL.fullmatch(folded):
        return Command("goal", f"{int(m.group('n'))} {_GOAL_UNITS[m.group('u')[:4]]}")
    if (m := _TIMEZONE.fullmatch(folded)) and (zone := find_timezone(_group(m))):
        return Command("timezone", zone)
    if (m := _TOPIC.fullmatch(folded)) and (topic := _topic(m.group("v"))):
        return Command("topic", topic)
    return None


def _group(match: re.Match[str]) -> str:
    return next(v for k, v in match.groupdict().items() if v and k not in ("days", "days2", "h", "m", "ampm"))


def _topic(word: str) -> str | None:
    topic = _TOPIC_WORDS.get(word, word)
    return topic if topic in TOPICS else None


def _practice(m: re.Match[str]) -> Command | None:
    hour, minute = int(m.group("h")), int(m.group("m") or 0)
    ampm = (m.group("ampm") or "").replace(".", "")
    if ampm == "pm" and hour < 12:
        hour += 12
    if ampm == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    days = _DAYS.get(m.group("days") or m.group("days2") or "every day", list(range(7)))
    return Command("practice", f"{hour:02d}:{minute:02d}", days)


@cache
def _zones() -> dict[str, str]:
    """Every IANA zone by its folded full name and by its city ("madrid" -> "Europe/Madrid")."""
    found: dict[str, str] = {}
    for zone in sorted(zoneinfo.available_timezones()):
        found[fold(zone)] = zone
        city = fold(zone.rsplit("/", 1)[-1].replace("_", " "))
        found.setdefault(city, zone)
    return found


def find_timezone(text: str) -> str | None:
    """An IANA timezone from its name or its main city ("Europe/Madrid", "madrid", "mexico city")."""
    folded = fold(text.replace("_", " "))
    return _zones().get(folded) or _zones().get(folded.replace(" ", "_"))
