"""English checker rules on nouns and their words: a/an, uncountable nouns, the generic "the", jobs without
a/an, plurals (irregular, after numbers, after "one of the"), and prepositions (collocations, time, none)."""

from __future__ import annotations

from collections.abc import Iterator

from charla.core.catalog import N_
from charla.tutor.checker import en_words as w
from charla.tutor.checker.en_tokens import Hit, Sentence, hit

_GENERIC = {"life", "love", "happiness", "nature", "friendship", "death", "freedom", "humanity"}
_SPORTS = {"football", "soccer", "basketball", "tennis", "baseball", "volleyball", "golf", "nature"}
_JOBS = {"teacher", "doctor", "engineer", "nurse", "student", "lawyer", "waiter", "waitress", "architect",
         "programmer", "developer", "designer", "journalist", "dentist", "chef", "accountant", "pilot", "farmer",
         "actor", "actress", "singer", "writer", "mechanic", "secretary", "manager", "scientist", "musician",
         "painter", "electrician", "plumber", "psychologist", "vet", "translator", "receptionist", "cashier"}
_IRREGULAR_PLURALS = {"childs": "children", "childrens": "children", "womans": "women", "mans": "men",
                      "foots": "feet", "feets": "feet", "tooths": "teeth", "teeths": "teeth", "mouses": "mice",
                      "gooses": "geese", "sheeps": "sheep", "wifes": "wives", "lifes": "lives", "thiefs": "thieves",
                      "mens": "men", "womens": "women", "persons": "people", "fishes": "fish"}
_COLLOCATIONS = {("depend", "of"): "on", ("depend", "from"): "on", ("married", "with"): "to",
                 ("interested", "on"): "in", ("interested", "for"): "in", ("different", "of"): "from",
                 ("dream", "with"): "about", ("good", "in"): "at", ("afraid", "to"): "", ("consist", "on"): "of",
                 ("think", "in"): "about", ("married", "of"): "to", ("arrive", "to"): ""}
_NO_PREPOSITION = {("enter", "in"), ("enter", "to"), ("call", "to"), ("discuss", "about"), ("marry", "with"),
                   ("go", "to"), ("come", "to"), ("get", "to")}
_PARTS_OF_DAY = {"morning", "afternoon", "evening"}
_LISTEN_OBJECTS = {"music", "the", "my", "your", "his", "her", "our", "their", "this", "that", "a", "him", "me",
                   "them", "us", "it", "songs", "podcasts", "radio"}


def a_an(s: Sentence) -> Iterator[Hit]:
    """a apple / an big: an before a vowel sound, a before a consonant sound."""
    for i, tok in enumerate(s.toks[:-1]):
        nxt = s.toks[i + 1]
        if tok.text not in {"a", "an", "A", "An"} or not nxt.word or (tok.low == "a" and s.low(i - 1) in
                                                                      {"letter", "vitamin", "plan", "type"}):
            continue
        vowel = w.vowel_sound(nxt.text)
        if vowel is not None and vowel != (tok.low == "an"):
            yield hit(i, i + 1, f"{'an' if vowel else 'a'} {nxt.text}", "articles", N_("check.en.a_an"))


def uncountable(s: Sentence) -> Iterator[Hit]:
    """an advice / informations: uncountable nouns take no a/an and no plural."""
    for i, tok in enumerate(s.toks):
        if tok.low in {"a", "an"}:
            j = i + 1 + (s.low(i + 1) in {"good", "great", "useful", "important", "bad", "new", "little"})
            noun = s.low(j)
            if noun in w.UNCOUNTABLE and noun not in {"research", "bread", "news"} and s.low(j + 1) != "of":
                yield hit(i, j, s.text_words(i + 1, j), "articles", N_("check.en.uncountable"), noun=noun)
        elif tok.low.endswith("s") and tok.low[:-1] in w.UNCOUNTABLE and tok.low not in {"researches", "breads"}:
            yield hit(i, i, tok.text[:-1], "plurals", N_("check.en.uncountable"), noun=tok.low[:-1])


def generic_the(s: Sentence) -> Iterator[Hit]:
    """The life is hard / I love the nature: speaking in general, English uses no article."""
    if s.low(0) == "the" and s.low(1) in _GENERIC and s.low(2) in {"is", "was", "makes", "can", "gives", "has"}:
        yield hit(0, 1, s.toks[1].text, "articles", N_("check.en.generic_the"), noun=s.low(1))
    for i in range(1, len(s.toks) - 1):
        if (s.low(i - 1) in {"like", "love", "hate", "enjoy", "prefer", "watch", "play"} and s.low(i) == "the" \
                and s.low(i + 1) in _SPORTS and not s.toks[i + 2 if i + 2 < len(s.toks) else i].word) \
                or (s.low(i) == "the" and s.low(i + 1) in _SPORTS and s.low(i + 2) in {"more", "very", "and"}
                    and s.low(i - 1) in {"like", "love", "hate", "enjoy", "prefer"}):
            yield hit(i, i + 1, s.toks[i + 1].text, "articles", N_("check.en.generic_the"), noun=s.low(i + 1))


def job_article(s: Sentence) -> Iterator[Hit]:
    """I am teacher: a job after be takes a/an."""
    for i, tok in enumerate(s.toks[1:], 1):
        if tok.low in _JOBS and s.low(i - 1) in {"am", "is", "are", "'m", "was", "be"} \
                and s.low(i + 1) in {"", ".", "!", ",", "in", "at", "and", "for", "from", "?"}:
            yield hit(i, i, f"{'an' if w.vowel_sound(tok.text) else 'a'} {tok.text}", "articles",
                      N_("check.en.job_article"))


def most_of(s: Sentence) -> Iterator[Hit]:
    """The most of my friends: most of, without the (make the most of is fine)."""
    for i, tok in enumerate(s.toks[:-2]):
        if tok.low == "the" and s.low(i + 1) == "most" and s.low(i + 2) == "of" and \
                s.low(i - 1) not in {"make", "made", "making", "makes"}:
            yield hit(i, i + 1, s.toks[i + 1].text, "articles", N_("check.en.most_of"))


def irregular_plural(s: Sentence) -> Iterator[Hit]:
    """childs, womans, tooths: irregular plurals; peoples (not of nations) is people."""
    for i, tok in enumerate(s.toks):
        fixed = _IRREGULAR_PLURALS.get(tok.low) if tok.low not in {"persons", "fishes"} else None
        if tok.low == "peoples" and s.low(i + 1) != "of":
            fixed = "people"
        if fixed:
            yield hit(i, i, fixed, "plurals", N_("check.en.irregular_plural"), singular=tok.low)


def plural_after_number(s: Sentence) -> Iterator[Hit]:
    """two book / many time / one of my friend: the noun after a number (or one of the...) is plural."""
    for i, tok in enumerate(s.toks[:-1]):
        j = _counted_noun(s, i)
        if j is None:
            continue
        noun, nxt = s.low(j), s.toks[j + 1] if j + 1 < len(s.toks) else None
        compound = nxt is not None and nxt.word and ((w.lemmas(nxt.low).get("NOUN") and nxt.low not in
                                                     {"yesterday", "today", "ago", "and", "in"}) or nxt.low == "old")
        if w.singular_noun(noun) and not compound and w.plural(noun):
            yield hit(j, j, w.plural(noun), "plurals", N_("check.en.plural_after_number"), word=tok.text)


def _counted_noun(s: Sentence, i: int) -> int | None:
    low = s.low(i)
    if low == "one" and s.low(i + 1) == "of" and s.low(i + 2) in {"the", *w.POSSESSIVES}:
        return i + 3 + (s.low(i + 3) in {"best", "worst", "most", "biggest", "nicest", "oldest", "greatest"})
    if (low in w.NUMBERS or (low.isdigit() and low not in {"0", "1"})) and s.low(i - 1) not in {"the", "of", "at"}:
        return i + 1
    return None


def collocation(s: Sentence) -> Iterator[Hit]:
    """depend of, married with, interested on, arrive to: the preposition English uses after the word."""
    for i, tok in enumerate(s.toks[:-1]):
        prep = s.low(i + 1)
        lemma = tok.low if (tok.low, prep) in _COLLOCATIONS else w.verb_lemma(tok.low) or tok.low
        if (lemma, prep) in _COLLOCATIONS and (lemma, prep) != ("afraid", "to"):
            fixed = _COLLOCATIONS[lemma, prep] or _arrive(s, i + 2)
            if fixed and not (lemma == "good" and not s.low(i + 2).endswith("ing")) and \
                    not (lemma == "think" and s.low(i + 2) not in {"you", "him", "her", "them", "it"}):
                yield hit(i, i + 1, f"{tok.text} {fixed}", "prepositions", N_("check.en.collocation"),
                          word=lemma, preposition=fixed)


def _arrive(s: Sentence, j: int) -> str:
    """arrive in a city or country, at a building; "" when unsure."""
    nxt = s.toks[j] if j < len(s.toks) else None
    if nxt is None:
        return ""
    if nxt.text[0].isupper() and nxt.low not in w.DETERMINERS:
        return "in"
    return "at" if nxt.low in {"the", "my", "his", "her", "our", "their", "school", "work"} else ""


def no_preposition(s: Sentence) -> Iterator[Hit]:
    """go to home, entered in the room, called to her mother: these verbs take no preposition here."""
    for i, tok in enumerate(s.toks[:-2]):
        lemma, prep, nxt = w.verb_lemma(tok.low) or tok.low, s.low(i + 1), s.low(i + 2)
        if (lemma, prep) not in _NO_PREPOSITION:
            continue
        home = lemma in {"go", "come", "get"} and nxt == "home"
        called = lemma == "call" and nxt in {*w.POSSESSIVES, "me", "him", "them", "us"}
        other = lemma in {"enter", "discuss"} or tok.low == "marry" or called
        if home or other:
            yield hit(i, i + 1, tok.text, "prepositions", N_("check.en.no_preposition"), word=lemma)


def listen_to(s: Sentence) -> Iterator[Hit]:
    """listen music: listen takes to before what is heard."""
    for i, tok in enumerate(s.toks[:-1]):
        if w.verb_lemma(tok.low) == "listen" and s.low(i + 1) in _LISTEN_OBJECTS:
            yield hit(i, i, f"{tok.text} to", "prepositions", N_("check.en.listen_to"))


def time_preposition(s: Sentence) -> Iterator[Hit]:
    """in Monday, at the morning, on 1995: on days, in the parts of the day, in years and months."""
    for i, tok in enumerate(s.toks[:-1]):
        nxt = s.low(i + 1)
        if tok.low in {"in", "at"} and nxt in w.WEEKDAYS | {d + "s" for d in w.WEEKDAYS}:
            fixed = "on"
        elif (tok.low == "at" and nxt == "the" and s.low(i + 2) in _PARTS_OF_DAY) or _year(tok.low, nxt):
            fixed = "in"
        else:
            continue
        yield hit(i, i, fixed, "prepositions", N_("check.en.time_preposition"))


def _year(preposition: str, nxt: str) -> bool:
    return preposition in {"on", "at"} and nxt.isdigit() and len(nxt) == 4 and nxt[:2] in {"19", "20"}


RULES = (uncountable, a_an, generic_the, job_article, most_of, irregular_plural, plural_after_number, collocation,
         no_preposition, listen_to, time_preposition)
