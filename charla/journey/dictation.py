"""Dictation (activity kind "dictation"): Charla speaks a sentence at the learner's level as a voice note, the
learner types what they heard, and every word is marked (charla.journey.wordmarks), with the differences in
WhatsApp formatting (~typed~ *right*) and a score. Scores and missed words go into the profile; missed words
become FSRS practice cards. No model is involved."""

from __future__ import annotations

from fsrs import Rating

from charla.core.catalog import N_, say
from charla.core.events import Choice
from charla.journey import listening_bank as catalog
from charla.journey.wordmarks import Graded, Kind, Mark, grade
from charla.store import profile
from charla.store.messages import Conn
from charla.store.turns import Waiting
from charla.tutor import practice
from charla.tutor.activity import Commit, Context, State, Step
from charla.tutor.prompt import language_name

MAX_CARDS = 3  # missed words made practice cards per round
MIN_CARD_LETTERS = 3  # shorter words (a, el, to) are not worth a card


class Dictation:
    """A spoken sentence to type; a round ends with its marks, then another one or stop."""

    kind = "dictation"

    async def start(self, ctx: Context, value: str) -> Step:
        found = catalog.bank(ctx.target)
        if found is None:
            return Step(unavailable(ctx))
        level = catalog.level_of(ctx.profile, value)
        sentence = catalog.pick_sentence(found, level, ctx.profile)
        return Step(say("dictation.start", ctx.native, level=level), self._listening(ctx.native),
                    state={"sentence": sentence, "level": level, "graded": False}, say=(sentence, ctx.target))

    def claims(self, state: State, row: Waiting) -> bool:
        return row.kind == "text" and not state.get("graded")

    async def answer(self, ctx: Context, state: State) -> Step:
        if ctx.choice == "dictation:next":
            return await self.start(ctx, state.get("level", ""))
        if ctx.choice == "dictation:stop":
            return Step(say("listening.stopped", ctx.native))
        if ctx.choice == "dictation:replay" or state.get("graded") or not ctx.newest.text:
            return Step(say("listening.again", ctx.native), self._listening(ctx.native), state=state,
                        say=(state["sentence"], ctx.target))
        graded = grade(state["sentence"], ctx.newest.text)
        return Step(result(graded, ctx.native), self._next(ctx.native), state={**state, "graded": True},
                    commit=_record(ctx, state["sentence"], graded))

    @staticmethod
    def _listening(native: str) -> list[Choice]:
        return [Choice(id="dictation:replay", title=say("listening.replay", native)),
                Choice(id="dictation:stop", title=say("listening.stop", native))]

    @staticmethod
    def _next(native: str) -> list[Choice]:
        return [Choice(id="dictation:next", title=say("listening.another", native)),
                Choice(id="dictation:stop", title=say("listening.stop", native))]


def unavailable(ctx: Context) -> str:
    return say("listening.unavailable", ctx.native, language=language_name(ctx.target, ctx.native))


def result(graded: Graded, native: str) -> str:
    """The round's reply: the score, the sentence marked word by word, and what each kind of mark was."""
    right = len(graded.of("ok", "accent"))
    lines = [say("dictation.score", native, score=graded.score, right=right, total=len(graded.of(*_REFERENCE))),
             marked(graded)]
    if right == len(graded.marks):
        lines.append(say("dictation.accents_only", native) if graded.of("accent") else say("dictation.perfect", native))
    for kind, key in _NOTES:
        if found := graded.of(kind):
            lines.append(say(key, native, words=", ".join(_noted(m) for m in found)))
    return "\n".join(lines)


def marked(graded: Graded) -> str:
    """The sentence as the learner should have typed it, each difference shown: ~typed~ *right*."""
    return " ".join(_shown(m) for m in graded.marks)


def _shown(mark: Mark) -> str:
    if mark.kind == "ok":
        return mark.expected
    if mark.kind == "missing":
        return f"*{mark.expected}*"
    if mark.kind == "extra":
        return f"~{mark.typed}~"
    return f"~{mark.typed}~ *{mark.expected}*"


def _noted(mark: Mark) -> str:
    if mark.kind in ("missing", "extra"):
        return mark.expected or mark.typed
    return f"{mark.typed} → {mark.expected}"


_REFERENCE: tuple[Kind, ...] = ("ok", "accent", "almost", "wrong", "missing")
_NOTES: tuple[tuple[Kind, str], ...] = (
    ("accent", N_("dictation.accent")), ("almost", N_("dictation.almost")), ("wrong", N_("dictation.wrong")),
    ("missing", N_("dictation.missing")), ("extra", N_("dictation.extra")))


def _record(ctx: Context, sentence: str, graded: Graded) -> Commit:
    missed = [m.expected.lower() for m in graded.of("wrong", "missing")]

    async def commit(conn: Conn) -> None:
        await profile.update(conn, ctx.learner_id,
                             lambda p: p.listening.dictated(catalog.sentence_id(sentence), graded.score, missed))
        for word in [w for w in dict.fromkeys(missed) if len(w) >= MIN_CARD_LETTERS][:MAX_CARDS]:
            await practice.review(conn, ctx.learner_id, f"word:{word}", Rating.Again, ctx.now)
    return commit
