"""A checker Finding as the learner reads it: its explanation in their explanation language, from the
catalogs (message id `finding.rule`, filled in with its values and its original and corrected text)."""

from __future__ import annotations

from charla.core.catalog import say
from charla.tutor.checker.base import Finding


def explain(finding: Finding, native: str) -> str:
    """The one-sentence explanation of `finding` in `native` (English when that language has no catalog)."""
    return say(finding.rule, native, **{"original": finding.original, "corrected": finding.corrected,
                                        **finding.values})
