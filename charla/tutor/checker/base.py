"""What a checker finds, and the registry of checkers by target language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module


@dataclass(frozen=True)
class Finding:
    """One learner error: `original` is the erroneous span as written (text[start:end]), `corrected` its
    corrected form, `category` one of charla.tutor.taxonomy.NAMES, `rule` the message id of its explanation
    in the catalogs (charla/locale), filled in with `values`."""

    original: str
    corrected: str
    category: str
    rule: str
    start: int
    end: int
    values: dict[str, str] = field(default_factory=dict)


Checker = Callable[[str], list[Finding]]

# Target language -> module with a `check(text) -> list[Finding]` (imported on first use: pipelines are big).
MODULES = {"es": "charla.tutor.checker.es", "en": "charla.tutor.checker.en"}


class UnsupportedLanguage(ValueError):
    """No checker for this target language."""


def checker(lang: str) -> Checker:
    """The checker for target language `lang` (loads its data on first use)."""
    if lang not in MODULES:
        raise UnsupportedLanguage(f"no checker for {lang!r}: one of {', '.join(sorted(MODULES))}")
    found: Checker = import_module(MODULES[lang]).check
    return found


def check(text: str, lang: str) -> list[Finding]:
    """Every error the checker of `lang` is sure of in `text`, in text order."""
    return sorted(checker(lang)(text), key=lambda f: (f.start, f.end))
