"""A reply that needs no capable model: the checker's corrections of what the learner wrote and a follow-up
question from the content bank, with the demo model's sentence only when it passed the guard. It is the
whole turn in offline mode (the demo model is the only one) and the fallback when a model's reply failed
the guard twice."""

from __future__ import annotations

from charla.core.catalog import N_, say
from charla.store.profile import Profile, explanation_language, level_to_use
from charla.store.session import Session
from charla.tutor import questions
from charla.tutor.findings import as_correction, findings
from charla.tutor.llm import Message, Prompt
from charla.tutor.prompt import TutorReply, language_name

# What an operator is told (console banner, `charla status`) when the demo model is the only one.
MODE = ("Offline mode: each reply is the built-in checker's corrections (Spanish and English targets) and a "
        "follow-up question at the learner's level from the content bank; the demo model's sentence is shown "
        "only when it passes the output guard.",
        "It cannot hold a real conversation, answer grammar questions, or catch errors the checker has no rule for.",
        "For the full tutor: set GROQ_API_KEY (Groq's free tier) or ANTHROPIC_API_KEY in .env and restart.")
SENTENCE_TOKENS = 48  # the demo model's sentence: one or two short sentences
_OPENERS = {True: N_("offline.fix"), False: N_("offline.fine")}


def checked_reply(texts: list[str], session: Session, profile: Profile, target: str, native: str,
                  sentence: str | None = None) -> TutorReply:
    """The checker's corrections of `texts`, the demo sentence if any, and a level-appropriate question."""
    explain_in = explanation_language(profile, native, target)
    fixes = [as_correction(found, explain_in) for found in findings(texts, target)][:8]
    asked = [m.text for m in session.messages if m.role == "assistant"]
    question = questions.follow_up(target, level_to_use(profile), session.topic, asked)
    opener = sentence or say(_OPENERS[bool(fixes)], native)
    return TutorReply(reply=opener, corrections=fixes, question=question)


def sentence_prompt(texts: list[str], target: str, seconds: float) -> Prompt:
    """A small, bounded prompt for the demo model: one friendly sentence in the target language."""
    system = (f"You are a friendly {language_name(target)} tutor. Answer the learner with one short, friendly "
              f"sentence in {language_name(target)}. Do not repeat yourself.")
    return Prompt(system=system, messages=[Message("user", "\n".join(texts)[-600:])], max_tokens=SENTENCE_TOKENS,
                  json=False, temperature=0.3, stop=("\n",), seconds=seconds)
