"""The placement (the guided activity "placement"): a short adaptive check that ends on a CEFR level.

Nine closed items from the target language's reviewed catalog (charla.journey.items), gap-fills with a reading
every few, each offered as choices with "I don't know"; it starts at A2 and moves up a band after a right
answer, down after a wrong one or "I don't know" (which is never a guess). Then one free answer, graded
without a model: its length and the checker's findings per 10 words. The level is the highest band answered
right at least half the time, moved one band toward the free answer's. It is stored as the *measured* level
(Profile.level_measured, with when), and the tutor uses the most recent evidence (store.profile.level_to_use).

A message that is not an answer is tutored and the placement stays open; "continue the test", or a tap on the
open question, resumes it; answered items are never asked again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from charla.core.catalog import say
from charla.core.events import Choice
from charla.journey.items import BANDS, Catalog, Item, UnknownCatalog, catalog
from charla.store import activities, profile
from charla.store.messages import Conn
from charla.store.profile import Profile
from charla.store.turns import Waiting
from charla.tutor.activity import Commit, Context, State, Step
from charla.tutor.commands import fold
from charla.tutor.findings import checked

KIND = "placement"
CLOSED = 9  # closed items, then the free answer
START = BANDS.index("A2")
READING_AT = (2, 6)  # the closed items (0-based) that are readings where the band has one left
IDK = "idk"
_IDK_WORDS = re.compile(r"(i )?(do not|don't|dont) know|idk|no idea|pass|skip|(no )?(lo )?se|no lo se|ni idea|"
                        r"paso|nao sei|nao faco ideia")
# (at least this many words, at most this many of the checker's findings per 10 words) -> a free answer's band
_FREE = ((40, 0.5, "C1"), (25, 1.0, "B2"), (15, 1.5, "B1"), (8, 2.5, "A2"))
_QUESTIONS = ("what's my level", "what is my level", "cual es mi nivel", "que es mi nivel")


@dataclass(frozen=True)
class Result:
    level: str
    right: int
    total: int
    words: int
    mistakes: int


def pick(cat: Catalog, band: int, asked: list[str]) -> Item | None:
    """The next closed item: one not asked yet from the nearest band to `band` (lower first on a tie), a
    reading at READING_AT."""
    reading = len(asked) in READING_AT
    for level in sorted(BANDS, key=lambda b: (abs(BANDS.index(b) - band), BANDS.index(b))):
        left = [item for item in cat.closed(level) if item.id not in asked]
        if left:
            return sorted(left, key=lambda item: ((item.kind == "reading") != reading, item.id))[0]
    return None


def moved(band: int, right: bool) -> int:
    """The band after an answer: up one after a right one, down one otherwise."""
    return max(0, min(len(BANDS) - 1, band + (1 if right else -1)))


def closed_level(results: list[list[object]]) -> str:
    """The highest band answered right at least once and at least half the times it was asked (A1 else)."""
    best = "A1"
    for band in BANDS:
        marks = [bool(ok) for level, ok in results if level == band]
        if marks and sum(marks) >= 1 and 2 * sum(marks) >= len(marks):
            best = band
    return best


def free_level(words: int, mistakes: int) -> str:
    """A free answer's band, from its length and the checker's findings per 10 words."""
    rate = mistakes * 10 / words if words else 99.0
    return next((band for least, most, band in _FREE if words >= least and rate <= most), "A1")


def measured(results: list[list[object]], free: str) -> str:
    """The closed items' level, one band toward the free answer's when that differs."""
    i, j = BANDS.index(closed_level(results)), BANDS.index(free)
    return BANDS[i + (j > i) - (j < i)]


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def question(item: Item, number: int, native: str) -> Step:
    """The item as Charla asks it: its options and "I don't know" as choices."""
    head = say("placement.progress", native, n=str(number), total=str(CLOSED + 1))
    body = "\n\n".join(filter(None, [head, f"_{item.text}_" if item.text else "", f"*{item.prompt}*"]))
    if item.kind == "free":
        body += "\n\n" + say("placement.free", native)
    options = [Choice(id=f"{KIND}:{item.id}:{n}", title=option) for n, option in enumerate(item.options)]
    return Step(body, [*options, Choice(id=f"{KIND}:{item.id}:{IDK}", title=say("placement.idk", native))])


def _asking(state: State, native: str, note: str = "") -> Step:
    cat = catalog(state["lang"])
    item = cat.item(state["current"])
    assert item is not None  # the state names an item of its own catalog version
    step = question(item, len(state["asked"]) + 1, native)
    return Step("\n\n".join(filter(None, [note, step.text])), step.choices, state)


def _typed(item: Item, text: str) -> str | None:
    """The choice a typed answer makes: an option's words, or "I don't know"."""
    words = fold(text)
    if _IDK_WORDS.fullmatch(words):
        return IDK
    return next((str(n) for n, option in enumerate(item.options) if fold(option) == words), None)


@dataclass
class Placement:
    """The placement activity."""

    kind: str = KIND

    async def start(self, ctx: Context, value: str) -> Step:
        open_state = await _open(ctx)
        if value == f"{KIND}:start:later" or value in ("stop", "quit", "end", "leave", "skip", "salir del",
                                                      "salir de la", "parar", "dejar", "terminar"):
            return Step(say("placement.later", ctx.native) if open_state is None
                        else say("placement.stopped", ctx.native))
        if open_state is not None:
            return _asking(open_state, ctx.native, say("placement.resume", ctx.native))
        if value in _QUESTIONS and (level := profile.level_to_use(ctx.profile)):
            return Step(say("placement.known", ctx.native, level=level),
                        [Choice(id=f"{KIND}:start", title=say("placement.offer_yes", ctx.native))])
        try:
            cat = catalog(ctx.target)
        except UnknownCatalog:
            return Step(say("placement.unavailable", ctx.native))
        first = pick(cat, START, [])
        assert first is not None  # every band has items (checked when the catalog loads)
        state: State = {"lang": ctx.target, "version": cat.version, "band": START, "asked": [], "results": [],
                        "current": first.id}
        return _asking(state, ctx.native, say("placement.intro", ctx.native, total=str(CLOSED + 1)))

    def claims(self, state: State, row: Waiting) -> bool:
        item = catalog(state["lang"]).item(state["current"])
        if item is None or not row.text or row.kind not in ("text", "audio"):
            return False
        return item.kind == "free" or _typed(item, row.text) is not None

    async def answer(self, ctx: Context, state: State) -> Step:
        item = catalog(state["lang"]).item(state["current"])
        if item is None:  # a catalog version shipped since it started: a new placement starts afresh
            return Step(say("activity.over", ctx.native))
        if ctx.choice is not None:
            asked_about, _, picked = ctx.choice.removeprefix(f"{KIND}:").rpartition(":")
            if asked_about != item.id:  # a tap on a question already answered: ask the open one again
                return _asking(state, ctx.native, say("placement.resume", ctx.native))
        else:
            picked = _typed(item, ctx.newest.text or "") or ("" if item.kind == "free" else IDK)
        if item.kind == "free":
            return await _finish(ctx, state, "" if picked == IDK else ctx.newest.text or "")
        right = picked != IDK and item.options[int(picked)] == item.answer
        return _after(ctx, state, item, right)


def _after(ctx: Context, state: State, item: Item, right: bool) -> Step:
    cat = catalog(state["lang"])
    band = moved(state["band"], right)
    asked = [*state["asked"], item.id]
    results = [*state["results"], [item.level, right]]
    nxt = pick(cat, band, asked) if len(asked) < CLOSED else None
    if nxt is None:
        frees = sorted(cat.free(), key=lambda f: abs(BANDS.index(f.level) - band))
        nxt = next(f for f in frees if f.id not in asked)
    return _asking({**state, "band": band, "asked": asked, "results": results, "current": nxt.id}, ctx.native)


async def _finish(ctx: Context, state: State, text: str) -> Step:
    words = word_count(text)
    mistakes = len(await checked([text], state["lang"])) if words else 0
    results = state["results"]
    result = Result(measured(results, free_level(words, mistakes)), sum(bool(ok) for _, ok in results),
                    len(results), words, mistakes)
    reason = say("placement.reason", ctx.native, right=str(result.right), total=str(result.total),
                 words=str(words), mistakes=str(mistakes))
    return Step(say("placement.done", ctx.native, level=result.level, reason=reason),
                commit=_storing(ctx, result.level, ctx.now))


def _storing(ctx: Context, level: str, at: datetime) -> Commit:
    async def commit(conn: Conn) -> None:
        def apply(p: Profile) -> None:
            p.level_measured, p.level_measured_at = level, at
            p.confirm("level_measured", ctx.newest.message_id)
        await profile.update(conn, ctx.learner_id, apply)
    return commit


async def _open(ctx: Context) -> State | None:
    """The learner's open placement's state, if one is open (and its catalog version is still the one shipped)."""
    active = await activities.current(ctx.conn, ctx.learner_id)
    if active is None or active.kind != KIND:
        return None
    state = active.state
    try:
        return state if catalog(state["lang"]).version == state["version"] else None
    except UnknownCatalog:
        return None
