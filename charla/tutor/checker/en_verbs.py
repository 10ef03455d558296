"""English checker rules on verbs: third-person -s, do-support in negatives and questions, the base form after
do/does/did and modals, irregular pasts, the past with a past time marker, the present perfect with since/for."""

from __future__ import annotations

from collections.abc import Iterator

from spellchecker import SpellChecker

from charla.core.catalog import N_
from charla.tutor.checker import en_words as w
from charla.tutor.checker.en_tokens import Hit, Sentence, hit

_CONJUNCTIONS = {"", ",", "and", "but", "because", "so", "when", "if", "that", "or", "while", "where", ";"}
_IRREGULAR = ("go", "eat", "teach", "think", "catch", "buy", "bring", "write", "make", "come", "sleep", "speak",
              "find", "drive", "meet", "lose", "take", "give", "know", "feel", "keep", "leave", "tell", "sell",
              "send", "spend", "stand", "understand", "win", "choose", "break", "forget", "fly", "grow", "hold",
              "lead", "mean", "steal", "throw", "become", "begin", "build", "cut", "draw", "drink", "fall", "fight",
              "get", "hear", "hit", "hurt", "put", "read", "ride", "ring", "run", "say", "see", "shake", "shoot",
              "sing", "sink", "sit", "swim", "wear", "wake", "freeze", "hide", "lend", "let", "pay", "shut", "sweep",
              "swing", "bite", "blow", "dig", "feed", "forgive")
_PARTICIPLE_BEFORE = {"have", "has", "had", "'ve", "'d", "been", "was", "were", "be", "being", "is", "are", "got",
                      "get", "never", "already", "just", "ever"}
_STATIVE = {"live", "work", "know", "study", "teach", "have", "wait", "be", "am", "is", "are", "'m"}
_HABIT = {"every", "each", "per", "usually", "always", "often", "sometimes", "will", "going", "tomorrow", "next"}
_COGNITION = {"remember", "know", "think", "believe", "like", "love", "hate", "want", "need", "hope", "mean",
              "understand", "forget", "guess", "say", "prefer", "miss", "feel", "wish"}


def _wrong_pasts() -> dict[str, str]:
    """Over-regularised pasts that are not English words (goed, buyed, catched) -> their verb."""
    known = SpellChecker()
    wrong: dict[str, str] = {}
    for lemma in _IRREGULAR:
        stem = lemma[:-1] if lemma.endswith("e") else lemma
        for guess in {stem + "ed", lemma + lemma[-1] + "ed", lemma + "ed"}:
            if not w.lemmas(guess) and not known.known([guess]):
                wrong[guess] = lemma
    return wrong


WRONG_PASTS = _wrong_pasts()


def third_person_s(s: Sentence) -> Iterator[Hit]:
    """he/she/it/everybody (or "my brother" opening the sentence) + a base verb: the verb takes -s."""
    for i in range(len(s.toks)):
        after = _third_subject(s, i)
        if after is None:
            continue
        j = _skip_adverbs(s, after)
        verb = s.low(j)
        fix = {"don't": "doesn't", "do": "does", "are": "is", "have": "has"}.get(verb)
        if fix or (w.base_verb(verb) and verb not in w.MODALS):
            yield hit(j, j, fix or w.inflect(verb, "VBZ"), "third_person_s", N_("check.en.third_person_s"),
                      verb=s.toks[j].text)


_COLLECTIVE = {"family", "team", "group", "staff", "class", "government", "company", "couple", "band", "police"}


def _third_subject(s: Sentence, i: int) -> int | None:
    """The index after a third-person singular subject starting at `i`, or None."""
    low, before = s.low(i), s.low(i - 1)
    if low in {"he", "she"} or low in w.EVERYONE:
        return i + 1 if before not in w.AUXILIARIES and before not in w.WH else None
    if low == "it":
        return i + 1 if before in _CONJUNCTIONS else None
    if i == 1 and before in w.POSSESSIVES and w.singular_noun(low) and low not in _COLLECTIVE:
        named = i + 1 < len(s.toks) and s.toks[i + 1].text[0].isupper()
        return i + 2 if named else i + 1
    return None


def _skip_adverbs(s: Sentence, j: int) -> int:
    while s.low(j) in w.FREQUENCY:
        j += 1
    return j


def after_auxiliary(s: Sentence) -> Iterator[Hit]:
    """do/does/did (negative, or before its subject) and modals take the base form: didn't went, does he likes."""
    for i, tok in enumerate(s.toks):
        low = tok.low
        if low in w.MODALS or low in {"don't", "doesn't", "didn't"}:
            j = i + 1
        elif low in {"do", "does", "did"} and s.low(i + 1) in w.SUBJECTS:
            j = i + 2
        else:
            continue
        j = _skip_adverbs(s, j + (s.low(j) == "not"))
        verb = s.low(j)
        if w.third_form(verb) or w.past_form(verb):
            category = "past_forms" if w.past_form(verb) else "third_person_s"
            yield hit(j, j, w.verb_lemma(verb), category, N_("check.en.base_after_auxiliary"), aux=tok.text)


def do_agreement(s: Sentence) -> Iterator[Hit]:
    """Do she / does they / I doesn't: the form of do agrees with its subject."""
    for i, tok in enumerate(s.toks):
        nxt, before = s.low(i + 1), s.low(i - 1)
        if tok.low in {"do", "don't"} and nxt in {"he", "she"} and (i == 0 or s.question):
            yield hit(i, i, "does" if tok.low == "do" else "doesn't", "third_person_s", N_("check.en.do_agreement"))
        elif tok.low in {"does", "doesn't"} and nxt in w.NOT_THIRD and (i == 0 or s.question):
            yield hit(i, i, "do" if tok.low == "does" else "don't", "third_person_s", N_("check.en.do_agreement"))
        elif tok.low == "doesn't" and before in w.NOT_THIRD:
            yield hit(i, i, "don't", "third_person_s", N_("check.en.do_agreement"))


def do_negative(s: Sentence) -> Iterator[Hit]:
    """I no like / he not know: a present-simple negative is don't/doesn't + the base form."""
    for i, tok in enumerate(s.toks[:-1]):
        if tok.low in w.SUBJECTS and s.low(i + 1) in {"no", "not"} and w.base_verb(s.low(i + 2)) \
                and s.low(i - 1) not in w.AUXILIARIES:
            do = "doesn't" if tok.low in w.THIRD else "don't"
            yield hit(i + 1, i + 2, f"{do} {s.toks[i + 2].text}", "do_support", N_("check.en.do_negative"))


def do_question(s: Sentence) -> Iterator[Hit]:
    """Where you live? / You like it?: a present-simple question needs do/does before its subject."""
    if not s.question:
        return
    i = _question_subject(s)
    if i is None:
        return
    subject, verb = s.toks[i], s.low(i + 1)
    if w.verb_lemma(verb) in {"be", "have"} and verb not in {"have", "has"}:
        return
    if subject.low in w.THIRD and w.third_form(verb):
        fixed = f"does {subject.text} {w.verb_lemma(verb)}"
    elif subject.low in w.NOT_THIRD and w.base_verb(verb) and verb not in w.MODALS:
        fixed = f"do {subject.text.lower() if subject.low != 'i' else 'I'} {s.toks[i + 1].text}"
    else:
        return
    yield hit(i, i + 1, fixed, "do_support", N_("check.en.do_question"))


def _question_subject(s: Sentence) -> int | None:
    """Where the subject pronoun of a question without do is: after its wh-phrase, or opening it (you/they/we)."""
    if s.low(0) in {"you", "they", "we"}:
        return 0
    if s.low(0) not in w.WH or s.low(0) == "who":
        return None
    for i in range(1, 4):
        if s.low(i) in w.SUBJECTS:
            return i
        if not (w.lemmas(s.low(i)).get("NOUN") or s.low(i) in {"much", "many", "often", "long", "far", "kind", "of"}):
            return None
    return None


def irregular_past(s: Sentence) -> Iterator[Hit]:
    """goed, buyed, catched: irregular verbs have their own past (went) and participle (gone)."""
    for i, tok in enumerate(s.toks):
        lemma = WRONG_PASTS.get(tok.low)
        if lemma:
            participle = s.low(i - 1) in _PARTICIPLE_BEFORE or s.low(i - 2) in {"have", "has", "had"}
            fixed = w.inflect(lemma, "VBN" if participle else "VBD")
            yield hit(i, i, fixed, "past_forms", N_("check.en.irregular_past"), verb=lemma)


def past_marker(s: Sentence) -> Iterator[Hit]:
    """Yesterday I go / Last year I work: a past time marker opening the sentence wants the simple past."""
    end = _opening_marker(s)
    if end is None or {"since", "will", "going", "tomorrow"} & set(s.lows()):
        return
    i = end + (s.low(end) == ",")
    subject = s.low(i)
    if subject not in w.SUBJECTS:
        return
    j = _skip_adverbs(s, i + 1)
    verb = s.low(j)
    if verb in w.BE_PRESENT:
        fixed = w.BE_PRESENT[verb] if subject not in {"you", "we", "they"} else "were"
    elif (w.base_verb(verb) and subject in w.NOT_THIRD) or (w.third_form(verb) and subject in w.THIRD):
        fixed = w.inflect(w.verb_lemma(verb) or verb, "VBD")
    else:
        return
    if fixed and verb not in w.MODALS:
        marker = " ".join(t.text for t in s.toks[:end])
        yield hit(j, j, fixed, "past_forms", N_("check.en.past_marker"), marker=marker)


def _opening_marker(s: Sentence) -> int | None:
    """The index after a past time marker that opens the sentence (Yesterday / Last summer / Two years ago)."""
    if s.low(0) == "yesterday":
        return 1
    if s.low(0) == "last" and (s.low(1) in w.UNITS or s.low(1) in w.WEEKDAYS or s.low(1) in
                               {"night", "summer", "winter", "spring", "autumn", "weekend", "year", "month"}):
        return 2
    if s.low(2) == "ago" and s.low(1) in w.UNITS:
        return 3
    return None


def present_perfect(s: Sentence) -> Iterator[Hit]:
    """I live here since 2010 / I study English for three years: a state up to now takes the present perfect."""
    lows = s.lows()
    k = next((k for k, low in enumerate(lows) if _since_anchor(s, k) or _for_anchor(s, k)), None)
    if k is None:
        return
    for i in range(k - 1, -1, -1):
        if lows[i] in w.SUBJECTS and s.low(i - 1) not in {"for", "to", "with", "at", "of", "about"}:
            yield from _perfect_of(s, i, k)
            return
        if lows[i] in {",", "that", "because", "when", "and", "but"}:
            return


def _perfect_of(s: Sentence, i: int, k: int) -> Iterator[Hit]:
    subject, verb, nxt = s.low(i), s.low(i + 1), s.low(i + 2)
    have = "has" if subject in w.THIRD else "have"
    if s.low(k) == "for" and ((verb not in _STATIVE and w.verb_lemma(verb) not in _STATIVE) or _HABIT & set(s.lows())):
        return
    if verb in {"have", "has"} and nxt not in w.DETERMINERS:
        return
    if verb in w.BE_PRESENT and nxt.endswith("ing") and w.verb_lemma(nxt):
        yield hit(i + 1, i + 2, f"{have} been {s.toks[i + 2].text}", "present_perfect",
                  N_("check.en.present_perfect"))
    elif verb in w.BE_PRESENT:
        yield hit(i + 1, i + 1, f"{have} been", "present_perfect", N_("check.en.present_perfect"))
    elif verb in {"don't", "doesn't"} and w.base_verb(nxt):
        yield hit(i + 1, i + 2, f"{have}n't {w.inflect(nxt, 'VBN')}", "present_perfect", N_("check.en.present_perfect"))
    elif (w.base_verb(verb) and subject in w.NOT_THIRD) or (w.third_form(verb) and subject in w.THIRD):
        participle = w.inflect(w.verb_lemma(verb) or verb, "VBN")
        yield hit(i + 1, i + 1, f"{have} {participle}", "present_perfect", N_("check.en.present_perfect"))


def _since_anchor(s: Sentence, k: int) -> bool:
    if s.low(k) != "since":
        return False
    nxt, after = s.low(k + 1), s.low(k + 2)
    return nxt.isdigit() or nxt in w.WEEKDAYS or nxt in w.MONTHS or (nxt in {
        "last", "yesterday", "childhood", "then", "school", "university", "march", "may", "this", "nine", "eight",
        "seven", "ten", "i", "we", "he", "she", "they"} and (nxt not in w.SUBJECTS or after in {"was", "were"}))


def _for_anchor(s: Sentence, k: int) -> bool:
    if s.low(k) != "for":
        return False
    nxt, after = s.low(k + 1), s.low(k + 2)
    return (nxt.isdigit() or nxt in w.NUMBER_WORDS) and (after in w.UNITS or (after == "long" and s.low(k + 3) ==
                                                                                "time"))


RULES = (third_person_s, after_auxiliary, do_agreement, do_negative, do_question, irregular_past, past_marker,
         present_perfect)
