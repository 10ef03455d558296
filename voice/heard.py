"""What the voice agent heard in a note (carried to the conversation agent in the message's payload
under "voice"), and the words the learner reads about it. Light on purpose: the conversation agent
imports it without loading any model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

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

    @classmethod
    def of(cls, payload: dict[str, Any]) -> Heard | None:
        raw = payload.get("voice")
        return cls.model_validate(raw) if isinstance(raw, dict) else None


_PROBLEMS = {
    "en": {
        "empty": "Your voice note arrived empty. Could you record it again?",
        "corrupt": "I couldn't open that voice note (the file seems damaged). Could you record it again?",
        "not_audio": "That doesn't look like audio I can play. Send me a voice note or type your message.",
        "too_long": "That voice note is too long for me ({seconds} s; I can listen to up to {limit} s). "
                    "Could you send it in shorter parts?",
        "too_large": "That voice note is too large for me (I can listen to up to {limit} s). Could you send it "
                     "in shorter parts?",
        "silent": "I couldn't hear any speech in that voice note. Could you record it again, a bit closer "
                  "to the microphone?",
        "unclear": "I couldn't make out what you said clearly (I understood: “{text}”). Could you say it "
                   "again, slowly, or type it?",
        "expired": "I couldn't download that voice note any more. Could you send it again?",
        "unavailable": "I couldn't fetch your voice note just now. Could you send it again in a minute?",
    },
    "es": {
        "empty": "Tu nota de voz llegó vacía. ¿Puedes grabarla otra vez?",
        "corrupt": "No pude abrir esa nota de voz (el archivo parece dañado). ¿Puedes grabarla otra vez?",
        "not_audio": "Eso no parece un audio que pueda escuchar. Mándame una nota de voz o escríbeme.",
        "too_long": "Esa nota de voz es demasiado larga para mí ({seconds} s; escucho hasta {limit} s). "
                    "¿Puedes mandarla en partes más cortas?",
        "too_large": "Esa nota de voz es demasiado grande para mí (escucho hasta {limit} s). ¿Puedes mandarla en "
                     "partes más cortas?",
        "silent": "No oí ninguna voz en esa nota. ¿Puedes grabarla otra vez, un poco más cerca del micrófono?",
        "unclear": "No entendí bien lo que dijiste (entendí: «{text}»). ¿Puedes repetirlo despacio o escribirlo?",
        "expired": "Ya no pude descargar esa nota de voz. ¿Puedes mandarla otra vez?",
        "unavailable": "No pude recibir tu nota de voz ahora mismo. ¿Puedes mandarla de nuevo en un minuto?",
    },
}


def problem_text(heard: Heard, native: str) -> str:
    texts = _PROBLEMS.get(native, _PROBLEMS["en"])
    template = texts.get(heard.problem or "corrupt", texts["corrupt"])
    return template.format(seconds=round(heard.seconds), limit=round(heard.limit_s), text=heard.transcript or "…")


def quote(text: str, native: str) -> str:
    """The reply's first line: what Charla heard, so a misheard word is visible at once."""
    return f"🎙️ {'Escuché' if native == 'es' else 'I heard'}: “{text}”"


def pronunciation_text(p: Pronunciation, native: str) -> str:
    """Feedback on a repeated phrase, naming the words to try again."""
    es = native == "es"
    if not (p.misheard or p.missing or p.unclear):
        return (f"✅ ¡Muy bien! Entendí cada palabra de «{p.target}»." if es
                else f"✅ Well done! I understood every word of “{p.target}”.")
    lines = [f"🎯 {'Pronunciación' if es else 'Pronunciation'}: {round(p.score * 100)}%"]
    for want, got in p.misheard:
        lines.append(f"• *{want}*: {'oí' if es else 'I heard'} “{got}”")
    if p.missing:
        lines.append(f"• {'No oí' if es else 'I did not hear'}: " + ", ".join(f"*{w}*" for w in p.missing))
    if p.unclear:
        lines.append(f"• {'Poco claro' if es else 'Not clear'}: " + ", ".join(f"*{w}*" for w in p.unclear))
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
