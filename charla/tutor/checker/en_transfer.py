"""English checker rules for what Spanish speakers carry over: age with have, make a question, a missing "it",
explain me / say me, people is, I am agree, false friends (assist, actually), -ed/-ing adjectives, word order
(adjective after the noun, questions, adverbs), capitals and common misspellings, there is + plural."""

from __future__ import annotations

from collections.abc import Iterator

from charla.core.catalog import N_
from charla.tutor.checker import en_words as w
from charla.tutor.checker.en_tokens import Hit, Sentence, hit

_FEELINGS = {"bored", "tired", "interested", "excited", "confused", "worried", "frightened", "embarrassed",
             "amazed", "surprised", "disappointed", "exhausted", "relaxed", "annoyed", "satisfied", "terrified",
             "shocked", "depressed"}
_THINGS = {"it", "this", "that", "movie", "film", "class", "book", "game", "lesson", "trip", "party", "story",
           "show", "match", "series", "job", "course", "news", "exam", "city", "museum", "concert"}
_FEEL_AFTER = {"in", "at", "with", "about", "because", "today", "now", "when", "after", "during", "by", "of",
               "for", "tonight", "here"}
_STATES = {"hungry", "thirsty", "sleepy", "hot", "cold", "afraid", "sure"}
_WEATHER = {"raining", "snowing", "cold", "hot", "sunny", "windy", "cloudy", "late", "early", "important",
            "necessary", "difficult", "easy", "possible", "impossible", "true", "very", "so", "really"}
_COLORS = {"red", "blue", "green", "black", "white", "yellow", "big", "small", "new", "old", "beautiful",
           "expensive", "cheap", "pink", "orange", "grey", "gray", "brown", "purple", "modern", "huge"}
_RESULT_VERBS = {"paint", "make", "keep", "turn", "dye", "color", "colour", "get", "find", "leave", "want", "like",
                 "prefer", "consider", "call"}
_MISSPELLINGS = {"tomorow": "tomorrow", "beatiful": "beautiful", "enviroment": "environment",
                 "diferent": "different", "inglish": "English", "necesary": "necessary", "responsable": "responsible",
                 "oportunity": "opportunity", "confortable": "comfortable", "goverment": "government",
                 "adress": "address", "begining": "beginning", "comunity": "community", "profesional": "professional",
                 "recomend": "recommend", "posible": "possible", "imposible": "impossible", "tecnology": "technology",
                 "exercice": "exercise", "realy": "really", "finaly": "finally", "untill": "until",
                 "becouse": "because", "wich": "which", "hapy": "happy", "comunication": "communication",
                 "ocurred": "occurred", "sincerily": "sincerely", "responsability": "responsibility",
                 "interesant": "interesting", "restaurante": "restaurant", "importan": "important",
                 "informacion": "information", "problema": "problem", "diferents": "different"}
_ADVERBS = {"always", "never", "usually", "often"}
_LIKE = {"like", "love", "enjoy", "hate", "liked", "loved", "enjoyed", "hated", "likes", "loves", "enjoys"}
_INDIRECT = {"know", "tell", "wonder", "understand", "sure", "remember", "ask", "asked", "knew"}


def age(s: Sentence) -> Iterator[Hit]:
    """I have 25 years: age is given with be (I am 25 years old)."""
    for i, tok in enumerate(s.toks[:-3]):
        be = {"have": "am", "has": "is", "had": "was"}.get(tok.low)
        if be and s.low(i - 1) in w.SUBJECTS | {"son", "daughter", "brother", "sister", "grandmother",
                                                 "grandfather", "mother", "father", "friend"} \
                and s.low(i + 1).isdigit() and s.low(i + 2) == "years":
            if s.low(i - 1) in {"you", "we", "they"}:
                be = "are" if be != "was" else "were"
            last = i + 2 + (s.low(i + 3) == "old")
            if s.low(last + 1) in {"", ".", "!", ",", "and", "but", "so", "now"}:
                yield hit(i, last, f"{be} {s.toks[i + 1].text} years old", "transfer", N_("check.en.age"))


def make_question(s: Sentence) -> Iterator[Hit]:
    """make a question / did a mistake: ask a question, make a mistake."""
    for i, tok in enumerate(s.toks[:-2]):
        lemma, det, noun = w.verb_lemma(tok.low), s.low(i + 1), s.low(i + 2)
        if lemma == "make" and det in {"a", "some", "many", "any", "one"} and noun in {"question", "questions"}:
            asked = {"make": "ask", "makes": "asks", "made": "asked", "making": "asking"}[tok.low]
            yield hit(i, i + 2, f"{asked} {det} {s.toks[i + 2].text}", "transfer", N_("check.en.make_question"))
        elif lemma == "do" and det in {"a", "many", "some"} and noun in {"mistake", "mistakes"}:
            made = {"do": "make", "does": "makes", "did": "made", "doing": "making"}.get(tok.low, "")
            if made:
                yield hit(i, i + 2, f"{made} {det} {s.toks[i + 2].text}", "transfer", N_("check.en.make_mistake"))


def missing_it(s: Sentence) -> Iterator[Hit]:
    """Is raining / because is important: an English sentence needs its subject (it)."""
    for i, tok in enumerate(s.toks[:-1]):
        opening = i == 0 and not s.question and s.low(i + 1) in _WEATHER
        if tok.low in {"is", "was"} and (opening or s.low(i - 1) == "because"):
            yield hit(i, i, f"it {tok.text.lower()}", "transfer", N_("check.en.missing_it"))


def person_after_verb(s: Sentence) -> Iterator[Hit]:
    """explain me / say me: explain takes to before the person; with a person, say becomes tell."""
    people = {"me", "us", "him", "her", "them"}
    for i, tok in enumerate(s.toks[:-1]):
        lemma, person = w.verb_lemma(tok.low), s.toks[i + 1]
        if lemma == "explain" and person.low in people:
            yield hit(i, i + 1, f"{tok.text} to {person.text}", "transfer", N_("check.en.explain_to"))
        elif lemma == "say" and person.low in people | {"you"}:
            told = {"say": "tell", "says": "tells", "said": "told", "saying": "telling"}.get(tok.low, "")
            if told:
                yield hit(i, i + 1, f"{told} {person.text}", "transfer", N_("check.en.say_tell"))


def people_plural(s: Sentence) -> Iterator[Hit]:
    """The people is / people in my city is: people is plural."""
    for i, tok in enumerate(s.toks):
        if tok.low != "people" or (s.low(i - 1) in {"a", "the"} and s.low(i - 1) == "a"):
            continue
        j = next((j for j in range(i + 1, min(i + 5, len(s.toks))) if s.low(j) in {"is", "was", "has"}), None)
        between = s.lows()[i + 1:j] if j else []
        if j is not None and (not between or (between[0] in {"in", "from", "of", "at"} and
                              not {"who", "that", ",", "and"} & set(between))):
            yield hit(j, j, {"is": "are", "was": "were", "has": "have"}[s.low(j)], "transfer",
                      N_("check.en.people_plural"))


def be_agree(s: Sentence) -> Iterator[Hit]:
    """I am agree / I have hungry: agree is a verb; hunger, thirst and sleep take be."""
    for i, tok in enumerate(s.toks[1:-1], 1):
        subject, nxt = s.low(i - 1), s.low(i + 1)
        if subject in w.SUBJECTS and tok.low in {"am", "is", "are", "'m"} and nxt == "agree":
            fixed = "agrees" if subject in w.THIRD else "agree"
            yield hit(i, i + 1, fixed, "transfer", N_("check.en.be_agree"))
        elif subject in w.SUBJECTS and tok.low in {"have", "has"} and nxt in _STATES - {"cold", "hot"}:
            be = {"i": "am", "he": "is", "she": "is", "it": "is"}.get(subject, "are")
            yield hit(i, i + 1, f"{be} {s.toks[i + 1].text}", "transfer", N_("check.en.have_state"))


def false_friend(s: Sentence) -> Iterator[Hit]:
    """assist to class (attend); Actually I am working (Currently)."""
    for i, tok in enumerate(s.toks[:-1]):
        if w.verb_lemma(tok.low) == "assist" and s.low(i + 1) == "to" and s.low(i + 2) not in w.SUBJECTS:
            attend = tok.low.replace("assist", "attend")
            yield hit(i, i + 1, attend, "false_friend", N_("check.en.assist"))
        elif w.verb_lemma(tok.low) == "lose" and s.low(i + 1) == "the" and s.low(i + 2) in {"bus", "train", "plane",
                                                                                           "flight"}:
            missed = {"lose": "miss", "lost": "missed", "loses": "misses", "losing": "missing"}.get(tok.low, "")
            if missed:
                yield hit(i, i, missed, "transfer", N_("check.en.lose_miss"))
    if s.low(0) == "actually" and s.low(1) in w.SUBJECTS and not {"not", "n't", "but", "don't", "doesn't"} & set(
            s.lows()) and (s.low(3).endswith("ing") or s.low(2) in {"live", "work", "study", "lives", "works"}):
        yield hit(0, 0, "Currently", "false_friend", N_("check.en.actually"))


def ed_ing(s: Sentence) -> Iterator[Hit]:
    """I am boring in class / the movie was bored: -ed says how someone feels, -ing what causes it."""
    for i, tok in enumerate(s.toks):
        j = i + 2
        while s.low(j) in w.INTENSIFIERS:
            j += 1
        adjective = s.low(j)
        person = tok.low in w.SUBJECTS - {"it"} and s.low(i + 1) in {"am", "'m", "are", "were", "was", "feel", "felt",
                                                                      "get", "got"}
        if person and adjective.endswith("ing") and adjective[:-3] + "ed" in _FEELINGS | {"tired", "bored"}:
            sure = s.low(i + 1) in {"feel", "felt", "get", "got"} or s.low(j + 1) in _FEEL_AFTER
            fixed = _ed(adjective)
            if sure and fixed:
                yield hit(j, j, fixed, "ed_ing_adjectives", N_("check.en.ed_ing"))
        if tok.low in _THINGS and s.low(i + 1) in {"is", "was"} and adjective in _FEELINGS and \
                (tok.low not in {"this", "that"} or i == 0) and s.low(j + 1) not in {"by", "with", "about", "of"}:
            yield hit(j, j, _ing(adjective), "ed_ing_adjectives", N_("check.en.ed_ing"))


def _ed(adjective: str) -> str:
    stem = adjective[:-3]
    for guess in (stem + "ed", stem + "d"):
        if guess in _FEELINGS:
            return guess
    return {"tiring": "tired"}.get(adjective, "")


def _ing(adjective: str) -> str:
    stem = adjective[:-2] if adjective.endswith("ed") else adjective
    return {"tired": "tiring", "surprised": "surprising"}.get(adjective) or (
        stem + "ing" if w.lemmas(stem + "ing") else stem[:-1] + "ing" if stem.endswith("e") else stem + "ing")


RULES_A = (age, make_question, missing_it, person_after_verb, people_plural, be_agree, false_friend, ed_ing)
