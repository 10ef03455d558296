"""What the English checker knows about words: closed classes written down here, open classes (verbs, nouns,
their inflections) from lemminflect's tables, which ship in its wheel."""

from __future__ import annotations

from functools import cache

from lemminflect import getAllLemmas, getInflection

THIRD = {"he", "she", "it"}
SUBJECTS = {"i", "you", "we", "they", *THIRD}
NOT_THIRD = {"i", "you", "we", "they"}
POSSESSIVES = {"my", "your", "his", "her", "our", "their"}
DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", *POSSESSIVES}
EVERYONE = {"everybody", "everyone", "nobody", "somebody", "someone", "no one", "anybody", "anyone"}
FREQUENCY = {"always", "usually", "often", "never", "sometimes", "also", "really", "normally", "rarely",
             "generally", "still", "just", "only", "frequently", "seldom"}
AUXILIARIES = {"do", "does", "did", "don't", "doesn't", "didn't", "can", "can't", "cannot", "could", "couldn't",
               "will", "won't", "would", "wouldn't", "shall", "should", "shouldn't", "may", "might", "must",
               "mustn't", "let", "to", "make", "made", "makes", "help", "helps", "see", "saw", "watch", "hear",
               "heard", "feel", "felt", "have", "has", "had", "not", "n't", "why", "please"}
MODALS = {"can", "could", "will", "would", "shall", "should", "may", "might", "must", "can't", "couldn't",
          "won't", "wouldn't", "shouldn't", "mustn't", "cannot"}
DO_FORMS = {"do", "does", "did", "don't", "doesn't", "didn't"}
WH = {"where", "what", "when", "why", "how", "who", "which"}
INTENSIFIERS = {"very", "so", "really", "too", "quite", "a", "bit", "little", "extremely", "pretty", "super",
                "totally", "always", "sometimes", "often", "never", "usually", "a lot"}
NUMBERS = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
           "twenty", "thirty", "several", "many", "both", "these", "those", "few", "various", "numerous"}
BE_PRESENT = {"am": "was", "is": "was", "are": "were", "'m": "was", "'s": "was", "'re": "were"}
# Nouns with no plural, or the same form singular and plural.
UNCOUNTABLE = {"advice", "information", "furniture", "homework", "luggage", "baggage", "equipment", "knowledge",
               "feedback", "software", "news", "research", "evidence", "progress", "traffic", "bread"}
INVARIANT = {"fish", "sheep", "deer", "people", "police", "series", "species", "aircraft", "money", "hair",
             "music", "water", "food", "staff", "data", "media", "year", "hundred", "thousand",
             "million", "dozen", "kilo", "percent", "euro", "dollar", "more", "less", "other", "same", "one", "of"}
UNITS = {"year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours", "minute", "minutes",
         "decade", "decades", "time"}
WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
MONTHS = {"january", "february", "april", "june", "july", "september", "october", "november", "december"}
LANGUAGES = {"english", "spanish", "french", "german", "italian", "portuguese", "chinese", "japanese", "russian",
             "arabic", "catalan", "mexican", "american", "british", "argentinian", "colombian", "peruvian",
             "chilean", "european", "african", "asian"}
NUMBER_WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "a", "an",
                "many", "several", "some", "few", "twenty", "thirty", "fifty"}


@cache
def lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """Universal POS -> lemmas of `word` in lemminflect's dictionary (empty if unknown)."""
    found: dict[str, tuple[str, ...]] = getAllLemmas(word)
    return found


@cache
def inflect(lemma: str, tag: str) -> str:
    """`lemma` inflected as Penn `tag` (VBZ, VBD, VBN, NNS...), or "" when lemminflect does not know it."""
    forms = getInflection(lemma, tag)
    return str(forms[0]) if forms else ""


def base_verb(word: str) -> bool:
    """`word` is the base form of a known verb (go, live, watch), not only a noun or adjective."""
    pos = lemmas(word)
    if word not in pos.get("VERB", ()) or word in {"be", "number", "people", "need"} or "ADV" in pos:
        return False
    return "ADJ" not in pos or word in {"like", "live"}


def verb_lemma(word: str) -> str:
    """The verb lemma of an inflected `word` (goes -> go, went -> go), or ""."""
    found = lemmas(word).get("VERB", ())
    return found[0] if found else ""


def third_form(word: str) -> bool:
    """`word` is a verb's -s form (goes, likes, has)."""
    lemma = verb_lemma(word)
    return bool(lemma) and lemma != word and inflect(lemma, "VBZ") == word


def past_form(word: str) -> bool:
    """`word` is a verb's simple past (went, came, liked) and not also its base form."""
    lemma = verb_lemma(word)
    return bool(lemma) and lemma != word and word in getInflection(lemma, "VBD")


def singular_noun(word: str) -> bool:
    """`word` is only a countable singular noun (book, brother), not an adjective or adverb as well."""
    pos = lemmas(word)
    if word in UNCOUNTABLE or word in INVARIANT or "NOUN" not in pos or {"ADJ", "ADV", "PRON", "DET"} & set(pos):
        return False
    return pos["NOUN"][0] == word and inflect(word, "NNS") not in {"", word}


def plural(word: str) -> str:
    return inflect(word, "NNS")


def vowel_sound(word: str) -> bool | None:
    """Whether `word` starts with a vowel sound (True), a consonant sound (False), or unsure (None)."""
    low = word.lower()
    if not low.isalpha() or word.isupper() or len(low) < 2:
        return None
    if low.startswith(("hour", "honest", "honor", "honour", "heir")):
        return True
    if low.startswith(("uni", "use", "usu", "uti", "ure", "uro", "eu", "one", "once", "ewe", "ufo", "uk")):
        return None if low.startswith(("unin", "unim", "unid", "unio")) else False
    if low[0] == "h" or low.startswith(("y", "w")):
        return None if low[0] == "h" else False
    return low[0] in "aeiou"
