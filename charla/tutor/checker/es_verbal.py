"""Spanish rules on verbs: ser/estar, subject-verb agreement, tense with time markers, preterite/imperfect
with markers of habit, and the subjunctive after its triggers. Conjugations come from es_verbs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from charla.tutor.checker.base import Finding
from charla.tutor.checker.es_lexicon import EVENTS, NAMES, PEOPLE, PROFESSIONS, SER_TO_ESTAR, STATE_FORMS
from charla.tutor.checker.es_text import PUNCT, Sentence, noun
from charla.tutor.checker.es_verbs import Form, conjugate, readings

INTENSIFIERS = {"muy", "tan", "bastante", "demasiado", "super", "súper", "algo"}
SUBJECTS = {"yo": 0, "tú": 1, "él": 2, "ella": 2, "usted": 2, "nosotros": 3, "nosotras": 3, "vosotros": 4,
            "vosotras": 4, "ellos": 5, "ellas": 5, "ustedes": 5}
CLITICS = {"me", "te", "se", "lo", "la", "le", "nos", "os", "los", "las", "les"}
ADVERBS = {"no", "también", "tampoco", "siempre", "nunca", "ya", "solo", "sólo", "todavía"}
PREPOSITIONS = {"a", "de", "con", "para", "por", "sin", "en", "entre", "según", "hacia", "que", "como"}
ESTAR_TO_SER = {v: k for k, v in SER_TO_ESTAR.items()}
BOUNDARIES = {"que", "porque", "cuando", "si", "pero", "aunque", "mientras", ",", ";", ".", "!", "?", "y"}


def _skip_state_words(s: Sentence, j: int) -> int:
    if s.low(j) == "un" and s.low(j + 1) == "poco":
        return j + 2
    return j + 1 if s.low(j) in INTENSIFIERS else j


def ser_estar(s: Sentence) -> Iterator[Finding]:
    """soy cansado → estoy cansado; es en casa → está en casa; estoy profesor → soy profesor."""
    for i in range(len(s) - 1):
        low = s.low(i)
        if low in SER_TO_ESTAR:
            j = _skip_state_words(s, i + 1)
            if s.low(j) in STATE_FORMS:
                corrected = " ".join([_estar_for(s, i), *(s.word(k) for k in range(i + 1, j + 1))])
                yield s.finding(i, j, corrected, "ser_estar", "ser_estar_state", word=s.low(j))
            elif _is_location(s, i):
                yield s.finding(i, i, _estar_for(s, i), "ser_estar", "ser_estar_location")
        elif low in ESTAR_TO_SER and s.low(i + 1) in PROFESSIONS:
            yield s.finding(i, i, ESTAR_TO_SER[low], "ser_estar", "ser_estar_profession", word=s.low(i + 1))


def _estar_for(s: Sentence, i: int) -> str:
    """Estar for the ser at i, in the person of a subject pronoun just before it when ser disagrees with it
    (yo es cansado → yo estoy cansado, not está), else in ser's own person."""
    person = SUBJECTS.get(s.low(i - 1))
    if person is not None:
        for form in readings(s.low(i)):
            if form.lemma == "ser" and (found := conjugate("estar", form.tense, person)):
                return found
    return SER_TO_ESTAR[s.low(i)]


def _is_location(s: Sentence, i: int) -> bool:
    after, nxt = s.low(i + 1), s.low(i + 2)
    if after not in ("en", "aquí", "allí", "allá") or nxt in ("serio", "inglés", "español", "francés"):
        return False
    if after == "en" and not (nxt in ("casa", "el", "la", "mi", "su", "tu", "un", "una") or s.word(i + 2).istitle()):
        return False
    if s.low(i) in ("soy", "eres", "somos", "sois", "era", "eras", "éramos"):
        return s.low(i) != "era" or s.low(i - 1) == "yo"
    return _personal_subject(s, i)


def _personal_subject(s: Sentence, i: int) -> bool:
    """A person or thing (not an event) is the subject of ser at i: the word before it, or det + noun."""
    before = s.low(i - 1)
    if before in ("él", "ella", "ellos", "ellas", "usted", "ustedes") or s.word(i - 1) in NAMES:
        return True
    found = noun(before)
    return found is not None and found[0] not in EVENTS and (found[0] in PEOPLE or s.low(i - 2) in
                                                             ("el", "la", "los", "las", "mi", "mis", "tu", "su"))


def _verb_after(s: Sentence, j: int) -> int:
    while s.low(j) in ADVERBS or s.low(j) in CLITICS:
        j += 1
    return j


def _corrections(found: tuple[Form, ...], tense: str | None, person: int) -> set[str]:
    return {c for r in found if (c := conjugate(r.lemma, tense or r.tense, person))}


def agreement(s: Sentence) -> Iterator[Finding]:
    """yo tiene → yo tengo; ellos va → ellos van; la gente son → la gente es."""
    for i in range(len(s) - 1):
        person = SUBJECTS.get(s.low(i))
        if person is None or s.low(i - 1) in PREPOSITIONS or "y" in (s.low(i - 1), s.low(i + 1)):
            if s.low(i) == "gente" and s.low(i - 1) == "la":
                person = 2
            else:
                continue
        j = _verb_after(s, i + 1)
        found = readings(s.low(j))
        if not found or any(r.person == person for r in found) or s.pos(j) not in ("VERB", "AUX"):
            continue
        fixes = _corrections(found, None, person)
        if len(fixes) == 1:
            yield s.finding(j, j, fixes.pop(), "verb_conjugation", "subject_verb", subject=s.low(i))


PAST = re.compile(r"\b(ayer|anoche|anteayer|(el|la) (año|mes|semana|verano|invierno|fin de semana|lunes|martes|"
                  r"miércoles|jueves|viernes|sábado|domingo) pasad[oa])\b")
NOT_PAST = re.compile(r"\b(ahora|hoy|mañana|normalmente|generalmente|siempre|cada|todos los|todas las|que|"
                      r"cuando|porque|si|pero)\b")
HABIT = re.compile(r"\b(tod[oa]s l[oa]s (días|semanas|veranos|años|fines de semana|mañanas|tardes|noches|lunes|"
                   r"domingos|sábados)|cada (día|semana|verano|año|fin de semana|mañana|domingo)|de (niñ|pequeñ)[oa]|"
                   r"cuando (era|éramos) (niñ[oa]s?|pequeñ[oa]s?|joven|jóvenes)|normalmente|generalmente|a menudo)\b")
BOUNDED = re.compile(r"\b(durante|hasta|desde|una vez|un día|ayer|anoche)\b")
STATIVE = {"ser", "estar", "tener", "querer", "poder", "saber", "conocer", "pensar", "preferir", "haber"}


def _retense(s: Sentence, j: int, tense_from: str, tense_to: str) -> set[str]:
    found = readings(s.low(j))
    if not found or any(r.tense != tense_from for r in found):
        return set()
    if {r.lemma for r in found} == {"ir", "ser"}:
        lemma = "ir" if s.low(j + 1) in ("a", "al", "de") else "ser"
        found = tuple(r for r in found if r.lemma == lemma)
    return {c for r in found if (c := conjugate(r.lemma, tense_to, r.person))}


def tense(s: Sentence) -> Iterator[Finding]:
    """ayer voy → ayer fui: a present verb with a marker of a finished past, in one clause."""
    lowered = s.text.lower()
    if not PAST.search(lowered) or NOT_PAST.search(lowered):
        return
    for j in range(len(s)):
        found = readings(s.low(j))
        if not found or any(r.lemma in STATIVE for r in found) or s.pos(j) not in ("VERB", "AUX", "PROPN"):
            continue
        if s.low(j) in ("voy", "vas", "va", "vamos", "van") and s.low(j + 1) == "a" and s.low(j + 2).endswith(
                ("ar", "er", "ir")):
            continue
        fixes = _retense(s, j, "pres", "pret")
        if len(fixes) == 1:
            yield s.finding(j, j, fixes.pop(), "tense", "tense_past_marker")


def preterite_imperfect(s: Sentence) -> Iterator[Finding]:
    """de niño jugué al fútbol todos los días → jugaba: a habit in the past takes the imperfect."""
    lowered = s.text.lower()
    if not HABIT.search(lowered) or BOUNDED.search(lowered):
        return
    for j in range(len(s)):
        fixes = _retense(s, j, "pret", "impf")
        if len(fixes) == 1 and s.low(j - 1) not in PUNCT | {"que"}:
            yield s.finding(j, j, fixes.pop(), "preterite_imperfect", "imperfect_habit")


TRIGGER = re.compile(r"\b(quiero|quieres|quiere|queremos|quieren|espero|esperamos|prefiero|necesito|ojalá|"
                     r"es (importante|necesario|mejor|posible|imposible|probable|una pena|triste|raro)|no creo|"
                     r"dudo|me alegro de|para|antes de|sin|te pido|le pido|recomiendo|sugiero|me gusta|"
                     r"me molesta|me encanta) que\b|\bojalá\b")


def subjunctive(s: Sentence) -> Iterator[Finding]:
    """quiero que tú vienes → quiero que tú vengas: the verb after a trigger of wish, need or doubt."""
    for match in TRIGGER.finditer(s.text.lower()):
        j = next((k for k, t in enumerate(s.doc) if t.idx >= match.end()), len(s))
        j = _verb_after(s, _skip_subject(s, j))
        fixes = _retense(s, j, "pres", "subj")
        if len(fixes) == 1:
            yield s.finding(j, j, fixes.pop(), "subjunctive", "subjunctive_trigger",
                            trigger=match.group(0).removesuffix(" que"))


def _skip_subject(s: Sentence, j: int) -> int:
    if s.low(j) in SUBJECTS or s.word(j) in NAMES:
        return j + 1
    if noun(s.low(j + 1)) is not None and s.low(j) in ("el", "la", "los", "las", "mi", "mis", "tu", "su", "sus"):
        return j + 2
    return j


def vocabulary(s: Sentence) -> Iterator[Finding]:
    """soy 20 años → tengo 20 años."""
    tener = {"soy": "tengo", "eres": "tienes", "es": "tiene", "somos": "tenemos", "son": "tienen"}
    for i in range(len(s) - 2):
        if s.low(i) in tener and (s.doc[i + 1].like_num or s.low(i + 1) == "un") and s.low(i + 2) in ("años", "año"):
            yield s.finding(i, i, tener[s.low(i)], "vocabulary", "tener_age")
