"""The deterministic checker's findings on a turn, as the tutor's corrections, and merged with a model's.

The checker is precision-first: what it finds, it is sure of. So an error it found that the model missed is
added; one both found (the same span, or the same category and fix) is counted once; and a model
correction of a span the checker corrects differently is a contradiction (the second-opinion path). A
target language whose checker is not installed has no findings: the typed `NoChecker` path, logged once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from charla.tutor import taxonomy
from charla.tutor.checker.base import Finding, UnsupportedLanguage, check
from charla.tutor.prompt import Correction, category_name

log = logging.getLogger(__name__)
# The checkers' NLP pipelines are shared objects, not made for concurrent calls: turns take them in turn.
_ONE_AT_A_TIME = threading.Lock()


class NoChecker(LookupError):
    """No checker is installed for this target language (its module or its NLP data is missing)."""


def findings(texts: list[str], target: str) -> list[Finding]:
    """What the checker of `target` is sure of in each of `texts`; [] when there is no checker for it."""
    texts = [text for text in texts if judgeable(text)]
    if not texts:
        return []
    try:
        with _ONE_AT_A_TIME:
            return [found for text in texts for found in _checked(text, target)]
    except NoChecker as exc:
        _note_once(target, str(exc))
        return []


async def checked(texts: list[str], target: str) -> list[Finding]:
    """`findings` off the event loop (spaCy's tagging would hold every other turn of the agent meanwhile)."""
    if not any(judgeable(text) for text in texts):  # no tagging, no thread hand-off
        return []
    return await asyncio.to_thread(findings, texts, target)


def judgeable(text: str) -> bool:
    """Whether a rule could flag anything in `text`: every rule corrects words, so a text without a letter
    (an emoji, a number, punctuation) is not tagged at all."""
    return any(ch.isalpha() for ch in text)


def _checked(text: str, target: str) -> list[Finding]:
    try:
        return check(text, target)
    except (UnsupportedLanguage, ImportError) as exc:  # ModuleNotFoundError: the language module is absent
        raise NoChecker(f"no checker for {target!r}: {exc}") from exc


@cache
def _note_once(target: str, why: str) -> None:
    log.info("%s: corrections come from the model alone", why)


def explain(finding: Finding, native: str) -> str:
    """The finding's explanation in the learner's explanation language (the checker's renderer when it is
    installed; the category's name otherwise)."""
    try:
        render = import_module("charla.tutor.checker.render")  # the catalogs' check.* explanations
    except ImportError:
        return category_name(finding.category, native)
    return str(render.explain(finding, native))


def as_correction(finding: Finding, native: str) -> Correction:
    return Correction(original=finding.original[:300], corrected=finding.corrected[:300],
                      category=taxonomy.of_finding(finding.category, finding.rule),
                      explanation=explain(finding, native)[:400])


@dataclass(frozen=True)
class Merged:
    corrections: list[Correction]
    added: int  # the checker's findings the model missed
    contradicted: int  # model corrections of a span the checker corrects otherwise


def merge(model: list[Correction], found: list[Finding], native: str, limit: int = 8) -> Merged:
    """The model's corrections plus the checker's that the model missed, each error once (same span, or
    same category and fix)."""
    merged, added, contradicted = list(model), 0, 0
    for finding in found:
        same = [c for c in model if _same_span(c, finding) or _same_fix(c, finding)]
        if not same and len(merged) < limit:
            merged.append(as_correction(finding, native))
            added += 1
        contradicted += sum(_same_span(c, finding) and _fold(c.corrected) != _fold(finding.corrected)
                            and not _contains(c, finding) for c in same)
    return Merged(merged, added, contradicted)


def _fold(text: str) -> str:
    return " ".join(text.lower().strip(" .,;:!?¡¿").split())


def _same_span(correction: Correction, finding: Finding) -> bool:
    """The correction's original and the finding's overlap (one contains the other)."""
    mine, theirs = _fold(correction.original), _fold(finding.original)
    return bool(mine and theirs) and (theirs in mine or mine in theirs)


def _same_fix(correction: Correction, finding: Finding) -> bool:
    same = correction.category == taxonomy.of_finding(finding.category, finding.rule)
    return same and _fold(finding.corrected) in _fold(correction.corrected)


def _contains(correction: Correction, finding: Finding) -> bool:
    """One fix includes the other (a wider or narrower span: "Yo soy cansado" → "Yo estoy cansado")."""
    mine, theirs = _fold(correction.corrected), _fold(finding.corrected)
    return theirs in mine or mine in theirs
