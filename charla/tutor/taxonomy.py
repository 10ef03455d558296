"""Error categories per target language: what the tutor is told to use, what the error map, practice and
progress count, and where a category from elsewhere lands (another language's, a model's own word).

Spanish has its own (ser/estar, por/para, preterite/imperfect...), English its own (articles, phrasal verbs,
present perfect vs past simple, third-person -s, question word order, countable/uncountable...), and any other
target language a generic set. Every category has a name in the catalogs (`category.<id>`), a short drill
sentence to fix (in the target language) and, for some, a grammar table sent with practice (charla.tutor.practice).
"""

from __future__ import annotations

import re

from charla.core.catalog import N_

# Every category's name, as a message id (English in the tutor's prompt, the learner's language in replies).
NAMES: dict[str, str] = {
    "gender_agreement": N_("category.gender_agreement"), "number_agreement": N_("category.number_agreement"),
    "ser_estar": N_("category.ser_estar"), "preterite_imperfect": N_("category.preterite_imperfect"),
    "subjunctive": N_("category.subjunctive"), "prepositions": N_("category.prepositions"),
    "por_para": N_("category.por_para"), "verb_conjugation": N_("category.verb_conjugation"),
    "tense": N_("category.tense"), "articles": N_("category.articles"), "pronouns": N_("category.pronouns"),
    "spelling": N_("category.spelling"), "accents": N_("category.accents"), "vocabulary": N_("category.vocabulary"),
    "word_order": N_("category.word_order"), "false_friend": N_("category.false_friend"),
    "punctuation": N_("category.punctuation"), "third_person_s": N_("category.third_person_s"),
    "do_support": N_("category.do_support"), "past_forms": N_("category.past_forms"),
    "present_perfect": N_("category.present_perfect"), "plurals": N_("category.plurals"),
    "ed_ing_adjectives": N_("category.ed_ing_adjectives"), "transfer": N_("category.transfer"),
    "phrasal_verbs": N_("category.phrasal_verbs"), "question_order": N_("category.question_order"),
    "countable_uncountable": N_("category.countable_uncountable"), "other": N_("category.other")}

# The categories of each target language, most telling first ("other" last); GENERIC for any other language.
SETS: dict[str, tuple[str, ...]] = {
    "es": ("ser_estar", "por_para", "preterite_imperfect", "subjunctive", "gender_agreement", "number_agreement",
           "verb_conjugation", "tense", "prepositions", "articles", "pronouns", "accents", "spelling", "vocabulary",
           "word_order", "false_friend", "punctuation", "other"),
    "en": ("articles", "prepositions", "phrasal_verbs", "present_perfect", "past_forms", "third_person_s",
           "do_support", "question_order", "countable_uncountable", "plurals", "number_agreement",
           "ed_ing_adjectives", "false_friend", "transfer", "verb_conjugation", "tense", "pronouns", "word_order",
           "spelling", "vocabulary", "punctuation", "other")}
GENERIC = ("gender_agreement", "number_agreement", "verb_conjugation", "tense", "articles", "prepositions",
           "pronouns", "word_order", "accents", "spelling", "vocabulary", "false_friend", "punctuation", "other")

# A category of another language, or a model's synonym, and where it lands in a target language's set.
ALIASES: dict[str, dict[str, str]] = {
    "en": {"por_para": "prepositions", "preterite_imperfect": "past_forms", "subjunctive": "tense",
           "ser_estar": "verb_conjugation", "gender_agreement": "pronouns", "accents": "spelling",
           "phrasal_verb": "phrasal_verbs", "question_word_order": "question_order", "questions": "question_order",
           "countable": "countable_uncountable", "uncountable": "countable_uncountable",
           "countable_nouns": "countable_uncountable", "uncountable_nouns": "countable_uncountable",
           "subject_verb_agreement": "third_person_s", "past_simple": "past_forms",
           "present_perfect_vs_past_simple": "present_perfect", "false_friends": "false_friend"},
    "es": {"third_person_s": "verb_conjugation", "past_forms": "preterite_imperfect", "present_perfect": "tense",
           "do_support": "word_order", "question_order": "word_order", "plurals": "number_agreement",
           "ed_ing_adjectives": "vocabulary", "phrasal_verbs": "vocabulary", "transfer": "vocabulary",
           "countable_uncountable": "articles", "false_friends": "false_friend", "gender": "gender_agreement"},
    "*": {"third_person_s": "verb_conjugation", "past_forms": "tense", "present_perfect": "tense",
          "preterite_imperfect": "tense", "subjunctive": "tense", "ser_estar": "verb_conjugation",
          "por_para": "prepositions", "do_support": "word_order", "question_order": "word_order",
          "plurals": "number_agreement", "countable_uncountable": "articles", "false_friends": "false_friend",
          "phrasal_verbs": "vocabulary", "ed_ing_adjectives": "vocabulary", "transfer": "vocabulary"}}
# A model's own word for a category, by a word in it (checked in order), when nothing above names it.
_HINTS = (("prepos", "prepositions"), ("article", "articles"), ("phrasal", "phrasal_verbs"),
          ("spell", "spelling"), ("accent", "accents"), ("punctu", "punctuation"), ("order", "word_order"),
          ("pronoun", "pronouns"), ("plural", "number_agreement"), ("gender", "gender_agreement"),
          ("agree", "number_agreement"), ("conjug", "verb_conjugation"), ("tense", "tense"), ("verb", "tense"),
          ("word", "vocabulary"), ("vocab", "vocabulary"), ("lexic", "vocabulary"))
# Checker rules (charla/tutor/checker) whose findings have a finer category than the one the rule reports.
RULES = {"check.en.uncountable": "countable_uncountable", "check.en.question_order": "question_order",
         "check.en.do_question": "question_order"}

# One sentence with the category's typical mistake, to fix, when the learner has no example of their own yet.
DRILLS: dict[str, dict[str, str]] = {
    "en": {"articles": "I am engineer and I live in the Madrid.",
           "prepositions": "I arrived to London in Monday.",
           "phrasal_verbs": "Can you pick up me at six? I need to look my keys for.",
           "present_perfect": "I live here since 2019 and I never was in Scotland.",
           "past_forms": "Yesterday I buyed a new phone and I goed home.",
           "third_person_s": "My sister work in a hospital and she don't like nights.",
           "do_support": "I not understand why he not call me.",
           "question_order": "Where you live? What time it is?",
           "countable_uncountable": "Can you give me an advice? I need some informations.",
           "plurals": "I have two childs and three dog.",
           "number_agreement": "There is many people here and this shoes are new.",
           "ed_ing_adjectives": "The film was very bored and I was interesting in the end.",
           "false_friend": "Actually I work in a bank and yesterday I assisted to a meeting.",
           "transfer": "I have 30 years and I am agree with you.",
           "word_order": "She speaks very well English.",
           "spelling": "I recieved your mesage tomorow."},
    "es": {"ser_estar": "Yo soy cansada hoy y mi casa es en Madrid.",
           "por_para": "Gracias para todo: este regalo es por ti.",
           "preterite_imperfect": "Ayer hacía mucho frío y de repente empezaba a nevar toda la tarde.",
           "subjunctive": "Espero que vienes mañana.",
           "gender_agreement": "La problema es que el mano me duele.",
           "number_agreement": "Los casa son muy bonito.",
           "verb_conjugation": "Nosotros va al cine y ellos come en casa.",
           "accents": "Mañana voy a la playa con mi mama y mi papa, si el quiere.",
           "prepositions": "Pienso a ti y sueño en el viaje.",
           "false_friend": "Estoy muy embarazada porque olvidé su nombre."}}

_FOLD = re.compile(r"[^a-z]+")


def categories(target: str) -> tuple[str, ...]:
    """The categories of target language `target` (the generic set for a language without its own)."""
    return SETS.get(target, GENERIC)


def fit(category: str | None, target: str) -> str:
    """`category` (a model's, another language's, a checker's) as one of `target`'s categories: itself when it
    is one, else its alias, else a category a word in it names, else "other"."""
    folded = _FOLD.sub("_", (category or "").lower()).strip("_")
    own = categories(target)
    if folded in own:
        return folded
    alias = ALIASES.get(target, ALIASES["*"]).get(folded) or ALIASES["*"].get(folded)
    if alias in own:
        return alias
    return next((name for word, name in _HINTS if word in folded and name in own), "other")


def of_finding(category: str, rule: str) -> str:
    """A checker finding's category in its language's set (the rule id names the language: "check.en.a_an")."""
    parts = rule.split(".")
    target = parts[1] if len(parts) > 2 and parts[0] == "check" else ""
    return fit(RULES.get(rule, category), target)


def drill(category: str, target: str) -> str | None:
    """A sentence with `category`'s typical mistake in `target`, to fix (None when there is none)."""
    return DRILLS.get(target, {}).get(category)
