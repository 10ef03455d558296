"""What the voice agent heard in a note (carried to the conversation agent in the message's payload
under "voice"), and the words the learner reads about it (the sentences are in charla/locale). Light on
purpose: the conversation agent imports it without loading any model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from charla.core.catalog import N_, say
from voice.pronounce import Feedback


class Pronunciation(BaseModel):
    target: str
    heard: str
    score: float
    misheard: list[tuple[str, str]] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    unclear: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, feedback: Feedback) -> Pronunciation:
        return cls(target=feedback.target, heard=feedback.heard, score=feedback.score, misheard=feedback.misheard,
                   missing=feedback.missing, unclear=feedback.unclear)


class Heard(BaseModel):
    """The outcome of one voice note: a transcript, or the problem that kept it from being one."""

    problem: str | None = None  # empty, corrupt, not_audio, too_long, too_large, silent, unclear, expired, unavailable
    confidence: float = 0.0
    seconds: float = 0.0
    language: str = ""
    model: str = ""
    limit_s: float = 0.0
    low_confidence: bool = False  # below CHARLA_VOICE_MIN_CONFIDENCE, passed on to be read charitably
    pronunciation: Pronunciation | None = None
    transcript: str = ""  # with a problem: what little was understood (the message itself carries no text)
    reading: str = ""  # the sentence of a read-aloud challenge this note was heard as a reading of
    words: list[tuple[str, float, float, float]] = Field(default_factory=list)  # a reading's (word, start, end, p)

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Heard | None:
        raw = payload.get("voice")
        return cls.model_validate(raw) if isinstance(raw, dict) else None


# Each problem's message id (heard.problem; anything else reads as a damaged file).
PROBLEMS = {"empty": N_("voice.empty"), "corrupt": N_("voice.corrupt"), "not_audio": N_("voice.not_audio"),
            "too_long": N_("voice.too_long"), "too_large": N_("voice.too_large"), "silent": N_("voice.silent"),
            "unclear": N_("voice.unclear"), "expired": N_("voice.expired"), "unavailable": N_("voice.unavailable")}


def problem_text(heard: Heard, native: str) -> str:
    key = PROBLEMS.get(heard.problem or "corrupt", PROBLEMS["corrupt"])
    return say(key, native, seconds=round(heard.seconds), limit=round(heard.limit_s), text=heard.transcript or "…")


def quote(text: str, native: str) -> str:
    """The reply's first line: what Charla heard, so a misheard word is visible at once."""
    return say("voice.heard", native, text=text)


def pronunciation_text(p: Pronunciation, native: str) -> str:
    """Feedback on a repeated phrase, naming the words to try again."""
    if not (p.misheard or p.missing or p.unclear):
        return say("voice.well_done", native, target=p.target)
    lines = [say("voice.score", native, score=round(p.score * 100))]
    lines += [say("voice.misheard", native, want=want, got=got) for want, got in p.misheard]
    if p.missing:
        lines.append(say("voice.missing", native, words=", ".join(f"*{w}*" for w in p.missing)))
    if p.unclear:
        lines.append(say("voice.unclear_words", native, words=", ".join(f"*{w}*" for w in p.unclear)))
    return "\n".join(lines)


def prompt_note(heard: Heard) -> str:
    """What the model is told about a spoken turn."""
    note = ("The learner's message is an automatic transcript of their voice note: do not correct spelling, "
            "punctuation, capitals or accents (the transcription chose them); correct grammar and word choice.")
    if heard.low_confidence:
        note += (" The transcription was unsure: where a word makes no sense, infer what they most likely said, "
                 "say what you understood, and do not correct words that are probably transcription errors.")
    p = heard.pronunciation
    if p is not None:
        flagged = [w for w, _ in p.misheard] + p.missing + p.unclear
        note += (f" They were repeating «{p.target}» to practise pronunciation; speech recognition heard "
                 f"«{p.heard}»" + (f" and flagged: {', '.join(flagged)}." if flagged else ", every word clear.")
                 + " Encourage them and give one concrete tip for a flagged word, if any.")
    return note
