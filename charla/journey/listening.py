"""Comprehension questions on a spoken passage (activity kind "listening"): Charla speaks a short passage at
the learner's level as a voice note, then asks its two or three multiple-choice questions one at a time
(tapped, numbered or typed out), says at once whether each answer was right, and ends with the score and the
passage's text. Graded against the catalog (charla/journey/data/listening): no model is involved."""

from __future__ import annotations

import re

from charla.core.catalog import say
from charla.core.events import Choice
from charla.journey import listening_bank as catalog
from charla.journey.dictation import unavailable
from charla.journey.wordmarks import fold
from charla.store import profile
from charla.store.messages import Conn
from charla.store.turns import Waiting
from charla.tutor.activity import Commit, Context, State, Step

_OPTION = re.compile(r"^listening:q(?P<q>\d+):(?P<o>\d+)$")


class Listening:
    """A passage to listen to and its questions; then another passage or stop."""

    kind = "listening"

    async def start(self, ctx: Context, value: str) -> Step:
        found = catalog.bank(ctx.target)
        if found is None:
            return Step(unavailable(ctx))
        passage = catalog.pick_passage(found, catalog.level_of(ctx.profile, value), ctx.profile)
        state: State = {"language": ctx.target, "passage": passage.id, "level": passage.level, "picked": []}
        intro = say("listening.start", ctx.native, level=passage.level, count=len(passage.questions))
        return Step(f"{intro}\n\n{_asked(passage, 0)}", _options(passage, 0, ctx.native), state=state,
                    say=(passage.text, ctx.target))

    def claims(self, state: State, row: Waiting) -> bool:
        return row.kind == "text" and _typed(state, row.text or "") is not None

    async def answer(self, ctx: Context, state: State) -> Step:
        passage = catalog.passage(state["language"], state["passage"])
        if passage is None or ctx.choice == "listening:stop":
            return Step(say("listening.stopped", ctx.native))
        if ctx.choice == "listening:next":
            return await self.start(ctx, state["level"])
        asked = len(state["picked"])
        if asked >= len(passage.questions):
            return Step(say("listening.finished", ctx.native), _after(ctx.native), state=state)
        picked = _picked(ctx, state, asked)
        if picked is None:  # "play it again", or a tap on an earlier question's option
            return Step(f"{say('listening.again', ctx.native)}\n\n{_asked(passage, asked)}",
                        _options(passage, asked, ctx.native), state=state,
                        say=(passage.text, ctx.target) if ctx.choice == "listening:replay" else None)
        return _graded(ctx, passage, {**state, "picked": [*state["picked"], picked]})


def _graded(ctx: Context, passage: catalog.Passage, state: State) -> Step:
    """Whether the latest answer was right, then the next question, or the score and the passage."""
    asked = len(state["picked"])
    question = passage.questions[asked - 1]
    right = state["picked"][-1] == question.answer
    verdict = say("listening.right", ctx.native) if right else say(
        "listening.wrong", ctx.native, answer=question.options[question.answer])
    if asked < len(passage.questions):
        return Step(f"{verdict}\n\n{_asked(passage, asked)}", _options(passage, asked, ctx.native), state=state)
    score = sum(p == q.answer for p, q in zip(state["picked"], passage.questions, strict=True))
    done = say("listening.score", ctx.native, right=score, total=len(passage.questions), text=passage.text)
    return Step(f"{verdict}\n\n{done}", _after(ctx.native), state=state,
                commit=_record(ctx, passage.id, round(100 * score / len(passage.questions))))


def _asked(passage: catalog.Passage, index: int) -> str:
    question = passage.questions[index]
    return f"*{index + 1}/{len(passage.questions)}* {question.question}"  # its options are the choices


def _options(passage: catalog.Passage, index: int, native: str) -> list[Choice]:
    options = [Choice(id=f"listening:q{index}:{n}", title=option)
               for n, option in enumerate(passage.questions[index].options)]
    return [*options, Choice(id="listening:replay", title=say("listening.replay", native))]


def _after(native: str) -> list[Choice]:
    return [Choice(id="listening:next", title=say("listening.another", native)),
            Choice(id="listening:stop", title=say("listening.stop", native))]


def _picked(ctx: Context, state: State, asked: int) -> int | None:
    """The option the learner picked for question `asked`: tapped (on that question), or typed."""
    if ctx.choice is None:
        return _typed(state, ctx.newest.text or "")
    tapped = _OPTION.match(ctx.choice)
    return int(tapped["o"]) if tapped and int(tapped["q"]) == asked else None


def _typed(state: State, text: str) -> int | None:
    """The option a typed answer names (its words; a number picks a choice before this)."""
    passage = catalog.passage(state.get("language", ""), state.get("passage", ""))
    asked = len(state.get("picked", []))
    if passage is None or asked >= len(passage.questions):
        return None
    folded = fold(text.strip(" .!¡?¿"))
    options = [fold(o) for o in passage.questions[asked].options]
    return options.index(folded) if folded in options else None


def _record(ctx: Context, passage_id: str, score: int) -> Commit:
    async def commit(conn: Conn) -> None:
        await profile.update(conn, ctx.learner_id, lambda p: p.listening.answered(passage_id, score))
    return commit
