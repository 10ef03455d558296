"""The learner's own settings (the guided activity "settings"): how strictly Charla corrects, which language it
explains in, how long its replies are, whether it sends voice notes.

`settings` shows them with a list of the other values (choice ids `settings:<field>:<value>`); a tap on one, or
the same said in plain words ("correct everything", "respuestas más cortas": charla.tutor.commands
SETTING_PHRASES), changes it. It never stays open, so an activity in progress (a placement) is left as it was.
Stored in the profile (charla.store.profile.Preferences) and read by the prompt, the rendering and the voice notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from charla.core.catalog import N_, say
from charla.core.events import Choice
from charla.store import profile
from charla.store.messages import Conn
from charla.store.profile import Preferences, Profile
from charla.store.turns import Waiting
from charla.tutor.activity import Commit, Context, State, Step
from charla.tutor.commands import SETTING_PHRASES, language_code

KIND = "settings"
# Each setting: its name's message id, and its values (as in a choice id) with their names' message ids.
FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "strictness": (N_("prefs.strictness"), {"1": N_("prefs.strictness.1"), "2": N_("prefs.strictness.2"),
                                            "3": N_("prefs.strictness.3")}),
    "explanations": (N_("prefs.explanations"), {"native": N_("prefs.explanations.native"),
                                                "target": N_("prefs.explanations.target"),
                                                "mixed": N_("prefs.explanations.mixed")}),
    "length": (N_("prefs.length"), {"short": N_("prefs.length.short"), "normal": N_("prefs.length.normal"),
                                    "long": N_("prefs.length.long")}),
    "voice": (N_("prefs.voice"), {"on": N_("prefs.voice.on"), "off": N_("prefs.voice.off")}),
}


def current(prefs: Preferences) -> dict[str, str]:
    """Each setting's value as a choice id names it."""
    return {"strictness": str(prefs.strictness), "explanations": prefs.explanations, "length": prefs.length,
            "voice": "on" if prefs.voice else "off"}


def typed(value: str) -> dict[str, Any]:
    """A `field:value` choice id as Preferences fields."""
    name, chosen = value.split(":", 1)
    if name == "strictness":
        return {name: int(chosen)}
    return {name: chosen == "on"} if name == "voice" else {name: chosen}


def from_words(words: str, native: str, target: str) -> str | None:
    """The `field:value` a plain-language phrase asks for; None when it names no setting we have."""
    key = next((key for key, pattern in SETTING_PHRASES.items() if re.fullmatch(pattern, words)), None)
    if key != "explanations:in":
        return key
    code = language_code(words.split()[-1])
    return {native: "explanations:native", target: "explanations:target"}.get(code or "")


def menu(prefs: Preferences, native: str) -> Step:
    """The settings as they are, and a list of every other value to tap."""
    now = current(prefs)
    lines = [f"• {say(title, native)}: *{say(values[now[name]], native)}*" for name, (title, values) in FIELDS.items()]
    choices = [Choice(id=f"{KIND}:{name}:{value}", title=say(key, native)[:24], description=say(title, native))
               for name, (title, values) in FIELDS.items() for value, key in values.items() if value != now[name]]
    return Step(say("prefs.menu", native, settings="\n".join(lines)), choices)


@dataclass
class Settings:
    """The settings activity: every step is a command's answer (it holds no state)."""

    kind: str = KIND

    async def start(self, ctx: Context, value: str) -> Step:
        key = value.removeprefix(f"{KIND}:") if value.startswith(f"{KIND}:") else (
            from_words(value, ctx.native, ctx.target) if value else None)
        name, _, chosen = (key or "").partition(":")
        if name not in FIELDS or chosen not in FIELDS[name][1]:
            step = menu(ctx.profile.preferences, ctx.native)
            return Step(say("prefs.unknown", ctx.native) + "\n\n" + step.text, step.choices) if value else step
        title, values = FIELDS[name]
        return Step(say("prefs.changed", ctx.native, setting=say(title, ctx.native), value=say(values[chosen],
                                                                                                  ctx.native)),
                    commit=_saving(ctx, typed(key or "")))

    def claims(self, state: State, row: Waiting) -> bool:
        return False

    async def answer(self, ctx: Context, state: State) -> Step:
        return menu(ctx.profile.preferences, ctx.native)


def _saving(ctx: Context, change: dict[str, Any]) -> Commit:
    async def commit(conn: Conn) -> None:
        def apply(p: Profile) -> None:
            p.preferences = p.preferences.model_copy(update=change)
            p.confirm("preferences", ctx.newest.message_id)
        await profile.update(conn, ctx.learner_id, apply)
    return commit
