"""Read-aloud challenges (activity "speak") and slow replay (activity "slow"), on the seam in
charla.tutor.activity.

"practice speaking": Charla sends a sentence from the bank (charla.tutor.reading: the learner's band, their weak
words and errors) as text and as a voice note. The voice agent transcribes the learner's reading with word
timings (it sees the open challenge) and puts the words in the payload; here they are scored against the
sentence (voice.readaloud), every word marked, and the words to practise are spoken back slowly. The results go
into the profile (per word and per sound) and into FSRS cards ("word:<w>": Again when missed or mispronounced).
A silent, damaged or unrelated recording is answered kindly, with no score, and the sentence stays open.
"say it slower" (or the button under any spoken example) speaks the last phrase again, slower; it opens nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from fsrs import Rating

from agents.outgoing import SLOWER, slower
from charla.core.catalog import say
from charla.core.events import Choice
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.store.turns import Waiting
from charla.tutor import practice, reading
from charla.tutor.activity import Commit, Context, State, Step
from voice import readaloud
from voice.heard import Heard, problem_text
from voice.pronounce import Word, similarity

UNRELATED = 0.34  # word overlap with the sentence under which a recording is not a reading of it
_MARK = {readaloud.OK: "{w}", readaloud.MISPRONOUNCED: "*{w}*❗", readaloud.MISSED: "~{w}~",
         readaloud.EXTRA: "_(+{w})_"}


class Speak:
    kind = "speak"

    async def start(self, ctx: Context, value: str) -> Step:
        return challenge(ctx.profile, ctx.native, ctx.target)

    def claims(self, state: State, row: Waiting) -> bool:
        return row.kind == "audio"  # typed words go to the tutor; the sentence stays open

    async def answer(self, ctx: Context, state: State) -> Step:
        sentence, native = str(state["sentence"]), ctx.native
        if ctx.choice == "speak:next":
            return await self.start(ctx, "")
        if ctx.choice == "speak:stop":
            return Step(say("speak.done", native))
        heard = Heard.of(ctx.newest.payload)
        if heard is None or heard.problem is not None:  # silent, damaged, too long...
            problem = [problem_text(heard, native)] if heard is not None else []
            return Step("\n\n".join([*problem, say("speak.again", native, sentence=sentence)]), _choices(native), state)
        said = ctx.newest.text or ""
        if not heard.words or similarity(sentence, said) < UNRELATED:
            return Step(say("speak.unrelated", native, text=said[:200] or "…", sentence=sentence),
                        _choices(native), state)
        words = [Word(*w) for w in heard.words]
        result = await asyncio.to_thread(readaloud.score, sentence, words, ctx.target, readaloud.ipa)
        repeat = result.to_repeat
        return Step(card(result, native), _choices(native), {**state, "tries": int(state.get("tries", 0)) + 1},
                    say=(", ".join(repeat), ctx.target) if repeat else None, slow=True,
                    commit=_record(ctx.learner_id, sentence, result, ctx.now))


def challenge(learner: Profile, native: str, target: str) -> Step:
    """A new read-aloud challenge: the sentence as text and voice note, and the state that opens it (also what
    a read-aloud practice prompt opens: agents/readings.py)."""
    sentence = reading.choose(learner, target).text
    return Step(say("speak.start", native, sentence=sentence), _choices(native), {"sentence": sentence, "tries": 0},
                say=(sentence, target))


class Slower:
    """The last phrase Charla spoke (the session's), again and slower; no state."""

    kind = "slow"

    async def start(self, ctx: Context, value: str) -> Step:
        if ctx.session.spoken is None:
            return Step(say("slow.none", ctx.native))
        return Step(say("slow.here", ctx.native), slower(ctx.native), say=ctx.session.spoken, slow=True)

    def claims(self, state: State, row: Waiting) -> bool:
        return False

    async def answer(self, ctx: Context, state: State) -> Step:
        return await self.start(ctx, "")


def card(result: readaloud.Score, native: str) -> str:
    """The score and every word marked, phone-sized (WhatsApp formatting)."""
    lines = [say("speak.score", native, score=result.overall, accuracy=round(result.accuracy * 100),
                 completeness=round(result.completeness * 100), fluency=round(result.fluency * 100),
                 wpm=round(result.words_per_minute)),
             " ".join(_MARK[m.verdict].format(w=m.word) for m in result.marks)]
    heard_as = [say("speak.heard_as", native, want=m.word, got=m.heard) for m in result.marks
                if m.verdict == readaloud.MISPRONOUNCED and readaloud.fold(m.heard) not in ("", readaloud.fold(m.word))]
    if result.to_repeat:
        lines += [say("speak.legend", native), *heard_as[:4],
                  say("speak.repeat", native, words=", ".join(f"*{w}*" for w in result.to_repeat))]
    else:
        lines.append(say("speak.perfect", native))
    return "\n".join([*lines, say("speak.limits", native)])


def _choices(native: str) -> list[Choice]:
    return [Choice(id="speak:next", title=say("speak.next", native)),
            Choice(id=SLOWER, title=say("slow.button", native)),
            Choice(id="speak:stop", title=say("speak.stop", native))]


def _record(learner_id: uuid.UUID, sentence: str, result: readaloud.Score, now: datetime) -> Commit:
    """The reading into the profile (per word, per sound) and the FSRS cards of its words: Again for a word
    missed or mispronounced, Good for a word the learner knows as weak and read right."""
    right = {m.word.lower(): m.verdict == readaloud.OK for m in result.marks if m.verdict != readaloud.EXTRA}
    sounds = [s for m in result.marks for s in m.sounds]

    async def commit(conn: Conn) -> None:
        stored = await profile.update(conn, learner_id,
                                      lambda p: p.speaking.record(sentence, result.overall, right, sounds))
        await practice.reading_answered(conn, learner_id)
        for word, ok in right.items():
            if len(word) >= 3 and (not ok or word in stored.vocabulary):
                await practice.review(conn, learner_id, f"word:{word}", Rating.Good if ok else Rating.Again, now)
    return commit
