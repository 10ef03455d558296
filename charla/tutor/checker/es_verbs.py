"""Spanish conjugation tables for the checker: the frequent verbs a learner writes, in the present, preterite,
imperfect and present subjunctive, and the reverse index from a written form to what it can be.

Only the verbs listed here are known: a rule that needs a conjugation says nothing about any other verb
(precision first). Regular verbs are built from their ending; irregular tenses are spelled out in full."""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from charla.tutor.checker.es_lexicon import words

TENSES = ("pres", "pret", "impf", "subj")
PERSONS = ("1s", "2s", "3s", "1p", "2p", "3p")

_ENDINGS = {
    "ar": {"pres": "o as a amos áis an", "pret": "é aste ó amos asteis aron",
           "impf": "aba abas aba ábamos abais aban", "subj": "e es e emos éis en"},
    "er": {"pres": "o es e emos éis en", "pret": "í iste ió imos isteis ieron",
           "impf": "ía ías ía íamos íais ían", "subj": "a as a amos áis an"},
    "ir": {"pres": "o es e imos ís en", "pret": "í iste ió imos isteis ieron",
           "impf": "ía ías ía íamos íais ían", "subj": "a as a amos áis an"},
}

REGULAR = words(
    "hablar trabajar estudiar bailar cantar cocinar comprar caminar escuchar mirar llegar viajar visitar "
    "tomar llamar necesitar preparar ayudar usar esperar nadar desayunar cenar limpiar lavar ganar practicar "
    "aprender comer beber leer vender correr comprender vivir escribir abrir decidir recibir subir "
    "aplicar solicitar asistir presentar terminar descansar regresar pasar quedar odiar amar buscar"
)

_IRREGULAR_TEXT = {
    "ser": {"pres": "soy eres es somos sois son", "pret": "fui fuiste fue fuimos fuisteis fueron",
            "impf": "era eras era éramos erais eran", "subj": "sea seas sea seamos seáis sean"},
    "estar": {"pres": "estoy estás está estamos estáis están",
              "pret": "estuve estuviste estuvo estuvimos estuvisteis estuvieron",
              "subj": "esté estés esté estemos estéis estén"},
    "ir": {"pres": "voy vas va vamos vais van", "pret": "fui fuiste fue fuimos fuisteis fueron",
           "impf": "iba ibas iba íbamos ibais iban", "subj": "vaya vayas vaya vayamos vayáis vayan"},
    "tener": {"pres": "tengo tienes tiene tenemos tenéis tienen",
              "pret": "tuve tuviste tuvo tuvimos tuvisteis tuvieron",
              "subj": "tenga tengas tenga tengamos tengáis tengan"},
    "hacer": {"pres": "hago haces hace hacemos hacéis hacen", "pret": "hice hiciste hizo hicimos hicisteis hicieron",
              "subj": "haga hagas haga hagamos hagáis hagan"},
    "poder": {"pres": "puedo puedes puede podemos podéis pueden",
              "pret": "pude pudiste pudo pudimos pudisteis pudieron",
              "subj": "pueda puedas pueda podamos podáis puedan"},
    "querer": {"pres": "quiero quieres quiere queremos queréis quieren",
               "pret": "quise quisiste quiso quisimos quisisteis quisieron",
               "subj": "quiera quieras quiera queramos queráis quieran"},
    "venir": {"pres": "vengo vienes viene venimos venís vienen",
              "pret": "vine viniste vino vinimos vinisteis vinieron",
              "subj": "venga vengas venga vengamos vengáis vengan"},
    "decir": {"pres": "digo dices dice decimos decís dicen", "pret": "dije dijiste dijo dijimos dijisteis dijeron",
              "subj": "diga digas diga digamos digáis digan"},
    "salir": {"pres": "salgo sales sale salimos salís salen", "subj": "salga salgas salga salgamos salgáis salgan"},
    "poner": {"pres": "pongo pones pone ponemos ponéis ponen",
              "pret": "puse pusiste puso pusimos pusisteis pusieron",
              "subj": "ponga pongas ponga pongamos pongáis pongan"},
    "saber": {"pres": "sé sabes sabe sabemos sabéis saben", "pret": "supe supiste supo supimos supisteis supieron",
              "subj": "sepa sepas sepa sepamos sepáis sepan"},
    "ver": {"pres": "veo ves ve vemos veis ven", "pret": "vi viste vio vimos visteis vieron",
            "impf": "veía veías veía veíamos veíais veían", "subj": "vea veas vea veamos veáis vean"},
    "dar": {"pres": "doy das da damos dais dan", "pret": "di diste dio dimos disteis dieron",
            "subj": "dé des dé demos deis den"},
    "conocer": {"pres": "conozco conoces conoce conocemos conocéis conocen",
                "subj": "conozca conozcas conozca conozcamos conozcáis conozcan"},
    "dormir": {"pres": "duermo duermes duerme dormimos dormís duermen",
               "pret": "dormí dormiste durmió dormimos dormisteis durmieron",
               "subj": "duerma duermas duerma durmamos durmáis duerman"},
    "jugar": {"pres": "juego juegas juega jugamos jugáis juegan",
              "pret": "jugué jugaste jugó jugamos jugasteis jugaron",
              "subj": "juegue juegues juegue juguemos juguéis jueguen"},
    "pensar": {"pres": "pienso piensas piensa pensamos pensáis piensan",
               "subj": "piense pienses piense pensemos penséis piensen"},
    "volver": {"pres": "vuelvo vuelves vuelve volvemos volvéis vuelven",
               "subj": "vuelva vuelvas vuelva volvamos volváis vuelvan"},
    "empezar": {"pres": "empiezo empiezas empieza empezamos empezáis empiezan",
                "pret": "empecé empezaste empezó empezamos empezasteis empezaron",
                "subj": "empiece empieces empiece empecemos empecéis empiecen"},
    "entender": {"pres": "entiendo entiendes entiende entendemos entendéis entienden",
                 "subj": "entienda entiendas entienda entendamos entendáis entiendan"},
    "preferir": {"pres": "prefiero prefieres prefiere preferimos preferís prefieren",
                 "pret": "preferí preferiste prefirió preferimos preferisteis prefirieron",
                 "subj": "prefiera prefieras prefiera prefiramos prefiráis prefieran"},
    "pedir": {"pres": "pido pides pide pedimos pedís piden", "pret": "pedí pediste pidió pedimos pedisteis pidieron",
              "subj": "pida pidas pida pidamos pidáis pidan"},
    "llegar": {"pret": "llegué llegaste llegó llegamos llegasteis llegaron",
               "subj": "llegue llegues llegue lleguemos lleguéis lleguen"},
    "buscar": {"pret": "busqué buscaste buscó buscamos buscasteis buscaron",
               "subj": "busque busques busque busquemos busquéis busquen"},
    "practicar": {"pret": "practiqué practicaste practicó practicamos practicasteis practicaron",
                  "subj": "practique practiques practique practiquemos practiquéis practiquen"},
    "aplicar": {"pret": "apliqué aplicaste aplicó aplicamos aplicasteis aplicaron",
                "subj": "aplique apliques aplique apliquemos apliquéis apliquen"},
    "leer": {"pret": "leí leíste leyó leímos leísteis leyeron"},
    "atender": {"pres": "atiendo atiendes atiende atendemos atendéis atienden"},
    "introducir": {"pres": "introduzco introduces introduce introducimos introducís introducen",
                   "pret": "introduje introdujiste introdujo introdujimos introdujisteis introdujeron"},
    "realizar": {"pres": "realizo realizas realiza realizamos realizáis realizan",
                 "pret": "realicé realizaste realizó realizamos realizasteis realizaron"},
}
_IRREGULAR_IMPF = {"atender": "er", "introducir": "ir", "realizar": "ar"}
VERBS = tuple(sorted({*REGULAR, *_IRREGULAR_TEXT}))


class Form(NamedTuple):
    """One reading of a written verb form."""

    lemma: str
    tense: str
    person: int  # index into PERSONS


def _irregular_lemma_class(lemma: str) -> str:
    return _IRREGULAR_IMPF.get(lemma, lemma[-2:])


@cache
def forms(lemma: str, tense: str) -> tuple[str, ...]:
    """The six forms of `lemma` in `tense` (1s 2s 3s 1p 2p 3p); empty when the verb is unknown."""
    if lemma not in VERBS:
        return ()
    spelled = _IRREGULAR_TEXT.get(lemma, {}).get(tense)
    if spelled:
        return tuple(spelled.split())
    stem, ending = lemma[:-2], _irregular_lemma_class(lemma)
    return tuple(stem + end for end in _ENDINGS[ending][tense].split())


def conjugate(lemma: str, tense: str, person: int) -> str | None:
    """One form, or None for an unknown verb."""
    found = forms(lemma, tense)
    return found[person] if found else None


@cache
def _index() -> dict[str, tuple[Form, ...]]:
    table: dict[str, list[Form]] = {}
    for lemma in VERBS:
        for tense in TENSES:
            for person, form in enumerate(forms(lemma, tense)):
                table.setdefault(form, []).append(Form(lemma, tense, person))
    return {form: tuple(readings) for form, readings in table.items()}


def readings(word: str) -> tuple[Form, ...]:
    """Every (lemma, tense, person) the lowercase `word` can be; empty when it is no known verb form."""
    return _index().get(word.lower(), ())


def only(word: str, tense: str) -> Form | None:
    """The one reading of `word` when all its readings are `tense` and agree on lemma and person, else None."""
    found = set(readings(word))
    if len(found) == 1:
        (single,) = found
        return single if single.tense == tense else None
    return None
