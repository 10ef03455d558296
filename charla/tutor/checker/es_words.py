"""Spanish rules on single words and fixed phrases: accents, frequent misspellings, false friends of English,
por/para in fixed patterns and the personal "a"."""

from __future__ import annotations

import re
from collections.abc import Iterator

from charla.tutor.checker.base import Finding
from charla.tutor.checker.es_lexicon import ACCENTS, NAMES, PEOPLE, QUESTION_WORDS, SPELLING, STATE_FORMS
from charla.tutor.checker.es_text import PUNCT, Sentence
from charla.tutor.checker.es_verbs import readings

_ESTA_NEXT = {"en", "aquí", "allí", "allá", "bien", "mal", "muy", "lejos", "cerca", "listo", "lista", "abierto",
              "abierta", "cerrado", "cerrada", "de"}
_NOT_3S = {"ama", "parte", "debe", "bebe", "vale", "cura"}


def accents(s: Sentence) -> Iterator[Finding]:
    """tambien → también; ¿como? → ¿cómo?; el es → él es; esta cansado → está cansado; yo se → yo sé."""
    for i in range(len(s)):
        fixed = _accent(s, i)
        if fixed and fixed != s.low(i):
            yield s.finding(i, i, fixed, "accents", "accent", word=fixed)


def _accent(s: Sentence, i: int) -> str | None:
    low = s.low(i)
    if low in ACCENTS:
        return ACCENTS[low]
    if low.endswith(("cion", "sion")) and len(low) > 5 and s.word(i).islower():
        return low[:-3] + "ión"
    if low == "mas" and s.low(i - 1) not in (",", ";"):
        return "más"
    if low in QUESTION_WORDS and _asks(s, i):
        return QUESTION_WORDS[low]
    return _homograph(s, i, low)


def _asks(s: Sentence, i: int) -> bool:
    """A question word opening a question: after ¿, or first word of a text ending with "?"."""
    j = i - 1 if s.low(i - 1) not in ("de", "a", "por", "para", "con", "en") else i - 2
    opened = s.low(j) == "¿" or (j < 0 and s.text.rstrip().endswith("?"))
    return opened and not (s.low(i) == "porque" and s.low(j) != "¿")


def _homograph(s: Sentence, i: int, low: str) -> str | None:
    after, before = s.low(i + 1), s.low(i - 1)
    if low in ("esta", "estas") and (after in _ESTA_NEXT | STATE_FORMS or after.endswith(("ando", "iendo"))
                                     or before in ("cómo", "dónde", "como", "donde", "tal")):
        return "está" if low == "esta" else "estás"
    if low == "el" and _third_person_verb(s, i + 1):
        return "él"
    if low == "tu" and _verb_next(s, i + 1, 1):
        return "tú"
    if low == "se" and before in ("yo", "no") and (after in PUNCT | {"", "que", "qué", "si", "nada", "mucho"}):
        return "sé"
    if low == "mi" and before in ("para", "a", "de", "por", "sin") and after in PUNCT | {"", "me", "también",
                                                                                         "tampoco", "es", "no"}:
        return "mí"
    if low == "si" and (after in ("", ".", "!") or (i == 0 and after == ",")):
        return "sí"
    return None


def _third_person_verb(s: Sentence, j: int) -> bool:
    if s.low(j) in ("no", "me", "te", "se", "lo", "le", "nos", "les"):
        j += 1
    return s.low(j) not in _NOT_3S and _verb_next(s, j, 2)


def _verb_next(s: Sentence, j: int, person: int) -> bool:
    found = readings(s.low(j))
    return bool(found) and all(r.person == person and r.tense != "subj" for r in found)


_YEAR = re.compile(r"\b(ano) (pasado|que viene)\b|\b(este|cada|el|un|del) (ano)\b|\b\d+ (anos)\b", re.IGNORECASE)


def spelling(s: Sentence) -> Iterator[Finding]:
    """nesesito → necesito; espanol → español; el ano pasado → el año pasado; ola, → hola."""
    for i in range(len(s)):
        low = s.low(i)
        right = SPELLING.get(s.word(i)) or SPELLING.get(low)
        if low in ("ano", "anos") and _YEAR.search(s.text):
            right = "año" if low == "ano" else "años"
        elif low == "ola" and i == 0 and s.low(1) in (",", "!", "."):
            right = "hola"
        elif low == "ay" and s.low(i + 1) in ("un", "una", "muchos", "muchas", "mucho", "mucha", "dos", "tres"):
            right = "hay"
        elif low == "cuidad" and s.low(i - 1) in ("la", "una", "mi", "tu", "su", "esta", "esa"):
            right = "ciudad"
        if right:
            yield s.finding(i, i, right, "spelling", "spelling", word=right)


_EMBARRASSED = {"embarazado": "avergonzado", "embarazados": "avergonzados"}
_EXCITED = {"excitado": "emocionado", "excitada": "emocionada", "excitados": "emocionados",
            "excitadas": "emocionadas"}
_ESTAR = {"estoy", "estás", "está", "estamos", "están", "estaba", "estábamos", "estaban", "muy", "tan"}
_ATTEND = {"atiendo": "asisto", "atiendes": "asistes", "atiende": "asiste", "atendemos": "asistimos",
           "atienden": "asisten", "atendí": "asistí", "atendió": "asistió", "atender": "asistir"}
_PLACES = {"clase", "clases", "universidad", "escuela", "reunión", "conferencia", "concierto", "boda", "curso"}
_APPLY = {"aplico": "solicito", "apliqué": "solicité", "aplicó": "solicitó", "aplicar": "solicitar",
          "aplicaste": "solicitaste", "aplicamos": "solicitamos"}
_REALIZE = {"realizo": "me doy cuenta de", "realicé": "me di cuenta de", "realizó": "se dio cuenta de",
            "realizaste": "te diste cuenta de", "realizas": "te das cuenta de", "realiza": "se da cuenta de"}
_INTRODUCE = {"introduzco": "presento", "introducir": "presentar", "introducirte": "presentarte",
              "introducirle": "presentarle", "introduje": "presenté", "introdujo": "presentó"}


def false_friends(s: Sentence) -> Iterator[Finding]:
    """embarazado → avergonzado; excitado → emocionado; atiendo la clase → asisto a la clase; ..."""
    for i in range(len(s)):
        yield from _false_friend(s, i, s.low(i))


def _false_friend(s: Sentence, i: int, low: str) -> Iterator[Finding]:
    if low in _EMBARRASSED or (low in ("embarazada", "embarazadas") and (
            s.low(i - 1) in ("muy", "tan", "poco") or s.low(i + 1) in ("porque", "cuando"))):
        right = _EMBARRASSED.get(low) or low.replace("embarazad", "avergonzad")
        yield s.finding(i, i, right, "false_friend", "false_friend_embarazada", word=low)
    elif low in _EXCITED and s.low(i - 1) in _ESTAR:
        yield s.finding(i, i, _EXCITED[low], "false_friend", "false_friend_excitado", word=low)
    elif low in _ATTEND and s.low(i + 1) in ("la", "el", "al", "a", "mi", "las", "clases") and (
            s.low(i + 2) in _PLACES or s.low(i + 1) in _PLACES):
        rest = " ".join(s.word(k) for k in range(i + 1, i + 3) if s.low(k) != "a")
        linked = rest if rest.startswith(("al ", "a ")) else f"a {rest}" if not rest.startswith("el ") else \
            f"al {rest[3:]}"
        yield s.finding(i, i + 2 if s.low(i + 2) in _PLACES else i + 1,
                        f"{_ATTEND[low]} {linked if s.low(i + 2) in _PLACES else 'a ' + s.word(i + 1)}",
                        "false_friend", "false_friend_atender", word=low)
    elif low in _APPLY and s.low(i + 1) in ("para", "a") and s.low(i + 3) in ("trabajo", "puesto", "beca", "empleo"):
        yield s.finding(i, i + 1, _APPLY[low], "false_friend", "false_friend_aplicar", word=low)
    elif low in _REALIZE and s.low(i + 1) == "que":
        yield s.finding(i, i, _REALIZE[low], "false_friend", "false_friend_realizar", word=low)
    elif low in _INTRODUCE and s.low(i + 1) == "a" and (s.word(i + 2) in NAMES or s.low(i + 3) in PEOPLE):
        yield s.finding(i, i, _INTRODUCE[low], "false_friend", "false_friend_introducir", word=low)
    elif low in ("librería", "librerías") and re.search(r"\b(estudiar|sacar|devolver|prestad[oa]s?)\b",
                                                         s.text.lower()):
        yield s.finding(i, i, "biblioteca" if low == "librería" else "bibliotecas", "false_friend",
                        "false_friend_libreria", word=low)


_FIXED = {("gracias", "para"): "gracias por", ("para", "ejemplo"): "por ejemplo", ("para", "favor"): "por favor",
          ("para", "supuesto"): "por supuesto", ("para", "fin"): "por fin"}
_PURPOSE = {"aprender", "comprar", "ganar", "visitar", "practicar", "mejorar", "conseguir", "ahorrar", "estudiar"}
_PER = {"día", "semana", "mes", "año", "hora"}


def por_para(s: Sentence) -> Iterator[Finding]:
    """gracias para → gracias por; dos veces para semana → por semana; estudio por aprender → para aprender."""
    for i in range(len(s) - 1):
        pair = (s.low(i), s.low(i + 1))
        if pair in _FIXED and (pair[1] != "fin" or s.low(i + 2) in PUNCT | {""}):
            yield s.finding(i, i + 1, _FIXED[pair], "por_para", "por_para_fixed", phrase=_FIXED[pair])
        elif pair[0] == "para" and pair[1] in _PER and s.low(i - 1) in ("vez", "veces"):
            yield s.finding(i, i, "por", "por_para", "por_para_rate")
        elif pair[0] == "por" and pair[1] in _PURPOSE and s.low(i - 1) not in (
                "gracias", "perdón", "perdona", "disculpa", "estoy", "está", "") and s.low(i - 1) not in PUNCT:
            yield s.finding(i, i, "para", "por_para", "por_para_purpose")


_PERSONAL = {"ver", "visitar", "conocer", "llamar", "ayudar", "buscar", "esperar", "amar", "escuchar", "querer"}
_OWNERS = {"mi", "mis", "tu", "tus", "su", "sus", "nuestro", "nuestra", "nuestros", "nuestras", "el", "la",
           "los", "las"}


def personal_a(s: Sentence) -> Iterator[Finding]:
    """veo mi madre → veo a mi madre; visito Juan → visito a Juan."""
    for i in range(len(s) - 1):
        found = readings(s.low(i))
        if not found or not all(r.lemma in _PERSONAL for r in found) or s.low(i - 1) in ("me", "te", "se", "nos"):
            continue
        if s.low(i + 1) in _OWNERS and s.low(i + 2) in PEOPLE:
            yield s.finding(i + 1, i + 2, f"a {s.word(i + 1)} {s.word(i + 2)}", "prepositions", "personal_a")
        elif s.word(i + 1) in NAMES:
            yield s.finding(i + 1, i + 1, f"a {s.word(i + 1)}", "prepositions", "personal_a")
