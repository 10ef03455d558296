"""The output guard: every reply is checked before a learner sees it, whichever model wrote it.

A reply fails when it is empty, repeats lines or sentences (a model in a loop), is far longer than the
tutor asks for, is in a language that is neither the learner's target nor their explanation language, or
echoes the prompt (the learner's own message, or a long stretch of the instructions). The checks are
deterministic and cheap (no model, no downloads): the language is judged from stopword profiles.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from charla.tutor.llm import Message, Prompt
from charla.tutor.prompt import echoes

_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
# Frequent function words per language, chosen to tell the languages Charla knows by name apart.
_STOPWORDS: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in {
    "es": "el la los las y es está estoy soy eres son un una unos por para con pero muy qué cómo yo tú mi tu "
          "del al lo se sí también hoy ayer porque cuando dónde donde hay tengo tienes me te su este esta eso "
          "más bien gracias hola usted ustedes nosotros estás puedes quieres",
    "en": "the and is are am i you it to of in that this what how do does did have has was were with for my "
          "your be can not yes today yesterday because when where there me we they very good thanks hello an "
          "would will at on",
    "pt": "o os e é um uma não sim você eu meu minha com muito obrigado obrigada também estou são do da dos das "
          "na em isso isto mas quando onde tem tenho hoje ontem bem olá seu sua ele ela vocês",
    "fr": "le les et est une des du je il elle nous vous pas ne oui avec pour mais très qui c'est suis sont mon "
          "ma ton ce cette aujourd'hui hier parce où merci bonjour au aux",
    "de": "der die das und ist ein eine ich du er sie wir nicht ja mit für aber sehr was wie bin bist sind mein "
          "dein heute gestern weil wann wo gut danke hallo auch auf zu den dem",
    "it": "il gli e è non sì io lui lei noi con per ma molto che come sono sei mio mia oggi ieri perché quando "
          "dove bene grazie ciao anche della nel alla",
}.items()}
_JUDGED_WORDS = 6  # fewer words than this: too little to judge the language
_LOOP_NGRAM, _LOOP_TIMES = 6, 3  # a run of words repeated this often is a loop, punctuation or not


@dataclass(frozen=True)
class Limits:
    """What a reply may be: its languages (target first) and its length."""

    languages: tuple[str, ...]
    max_chars: int = 800
    max_sentences: int = 10


def problems(text: str, prompt: Prompt, limits: Limits) -> list[str]:
    """Why `text` (a reply to `prompt`) must not reach the learner; empty when it may."""
    if not text.strip():
        return ["empty"]
    found = []
    own = unquoted(text, prompt)
    if repeated(own):
        found.append("repeated")
    if len(own) > limits.max_chars or len(sentences(own)) > limits.max_sentences:
        found.append("too_long")
    if (lang := language_of(text)) is not None and not _allowed(text, lang, limits.languages):
        found.append("wrong_language")
    if echoed(text, prompt):
        found.append("echo")
    return found


def unquoted(text: str, prompt: Prompt) -> str:
    """`text` without one quote of each line the learner wrote in this turn: a reply that quotes a burst of
    the learner's messages to answer them is not repeating itself, nor long by its own doing (a loop that
    quotes the same line over and over still is)."""
    quotable = Counter(sentences(_learner(prompt)))
    kept = []
    for part in _SENTENCE_END.split(text):
        folded = " ".join(_WORDS.findall(part.lower()))
        if folded and quotable[folded] > 0:
            quotable[folded] -= 1
        else:
            kept.append(part)
    return "\n".join(kept)


def _learner(prompt: Prompt) -> str:
    return next((m.content for m in reversed(prompt.messages) if m.role == "user"), "")


def sentences(text: str) -> list[str]:
    """The sentences and lines of `text`, folded to lower-case words ("" parts dropped)."""
    folded = (" ".join(_WORDS.findall(part.lower())) for part in _SENTENCE_END.split(text))
    return [part for part in folded if part]


def repeated(text: str) -> bool:
    """A sentence of 3+ words said twice, any sentence said three times, or a loop of words."""
    counts = Counter(sentences(text))
    if any((n >= 2 and len(s.split()) >= 3) or n >= 3 for s, n in counts.items()):
        return True
    words = _WORDS.findall(text.lower())
    runs = Counter(tuple(words[i:i + _LOOP_NGRAM]) for i in range(len(words) - _LOOP_NGRAM + 1))
    return any(n >= _LOOP_TIMES for n in runs.values())


def language_of(text: str) -> str | None:
    """The language whose function words `text` uses most, when it has enough words to tell."""
    words = _WORDS.findall(text.lower())
    if len(words) < _JUDGED_WORDS:
        return None
    hits = _hits(words)
    best = max(hits, key=lambda lang: hits[lang])
    return best if hits[best] >= 2 else None


def _hits(words: list[str]) -> dict[str, int]:
    return {lang: sum(word in stop for word in words) for lang, stop in _STOPWORDS.items()}


def _allowed(text: str, found: str, languages: tuple[str, ...]) -> bool:
    """`found` is one of `languages`, or those are about as likely (precision first: close calls pass)."""
    known = [lang for lang in languages if lang in _STOPWORDS]
    if found in languages or not known:
        return True
    hits = _hits(_WORDS.findall(text.lower()))
    return hits[found] < 2 * max(hits[lang] for lang in known) + 1


def echoed(text: str, prompt: Prompt) -> bool:
    """`text` is the learner's latest message over again, or repeats a long stretch of the instructions."""
    learner = _learner(prompt)
    if learner.strip() and sentences(text) == sentences(learner):
        return True
    return echoes(text, [prompt.system], least=8)


def retry_prompt(prompt: Prompt, found: list[str], language: str) -> Prompt:
    """The same prompt, told what was wrong with the last answer (the answer itself is not replayed: a loop
    shown to a model invites more of it)."""
    note = (f"Your last answer was unusable ({', '.join(found)}). Answer again: short, in {language}, "
            "no repetition, do not copy the instructions or the learner's message.")
    return Prompt(system=prompt.system, messages=[*prompt.messages, Message("user", note)],
                  max_tokens=prompt.max_tokens, json=prompt.json, temperature=0.0, stop=prompt.stop)


_DEMO_HITS = 2  # function words of the target language a demo sentence needs, at the least


def plainly_in(text: str, target: str) -> bool:
    """A demo model's sentence is plainly in `target`: at least two of its function words, more than of any
    other language, and a finished sentence (not "…rewriting it to:"). A 135M model mostly writes fragments
    ("Este maradora") or English; the stricter test keeps those from learners, who cannot tell them apart."""
    if not text.strip() or text.rstrip().endswith((":", ",", ";")):
        return False
    if target not in _STOPWORDS:
        return True  # no profile to judge by: the guard's other checks decide
    hits = _hits(_WORDS.findall(text.lower()))
    return hits[target] >= _DEMO_HITS and all(hits[target] > n for lang, n in hits.items() if lang != target)
