"""Split long replies into WhatsApp-sized parts at natural boundaries.

Parts are cut at a paragraph break if one is near enough, else a line break, a sentence end, a space, and
only as a last resort anywhere; never inside a grapheme cluster (an emoji with its modifiers, a flag, a
letter with its accents: `regex`'s \\X), and never inside a `*bold*`, `_italic_`, `~strike~` or
```monospace``` span unless that span alone is longer than the limit. Joining the parts gives back the
original text exactly. Length is counted in UTF-16 code units, as WhatsApp and Twilio count it.
"""

from __future__ import annotations

from bisect import bisect_right

import regex

META_TEXT_LIMIT = 4096
TWILIO_TEXT_LIMIT = 1600

_GRAPHEME = regex.compile(r"\X", regex.DOTALL)
_SPANS = regex.compile(r"```.+?```|\*[^*\n]+\*|_[^_\n]+_|~[^~\n]+~", regex.DOTALL)
# Boundary kinds in order of preference; a cut goes right after the match.
_BOUNDARIES = (regex.compile(r"\n\s*\n"), regex.compile(r"\n"), regex.compile(r"[.!?…]+[\"')\]]*\s+"),
               regex.compile(r"\s+"))


def utf16_len(text: str) -> int:
    """Length as WhatsApp counts it (UTF-16 code units: an emoji outside the BMP counts 2; a lone surrogate,
    which Python's json lets into a str, counts 1 instead of raising)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def formatting_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each formatting span, scanned left to right without overlaps."""
    return [m.span() for m in _SPANS.finditer(text)]


def split_text(text: str, limit: int = META_TEXT_LIMIT) -> list[str]:
    """Parts of `text`, each at most `limit` UTF-16 units, that concatenate back to `text`."""
    if limit < 2:
        raise ValueError("limit must allow at least one surrogate pair")
    if utf16_len(text) <= limit:
        return [text] if text else []
    cuts = _grapheme_boundaries(text)
    spans = formatting_spans(text)
    parts, start = [], 0
    while utf16_len(text[start:]) > limit:
        end = _cut(text, start, limit, cuts, spans)
        parts.append(text[start:end])
        start = end
    parts.append(text[start:])
    return [p for p in parts if p]


def _grapheme_boundaries(text: str) -> list[int]:
    return [m.end() for m in _GRAPHEME.finditer(text)]


def _inside_span(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < position < end for start, end in spans)


def _furthest(text: str, start: int, limit: int, cuts: list[int]) -> int:
    """The furthest grapheme boundary after `start` keeping the part within `limit`."""
    budget, end = limit, start
    for cut in cuts[bisect_right(cuts, start):]:
        budget -= utf16_len(text[end:cut])
        if budget < 0:
            break
        end = cut
    return end if end > start else cuts[bisect_right(cuts, start)]  # one cluster longer than the limit


def _cut(text: str, start: int, limit: int, cuts: list[int], spans: list[tuple[int, int]]) -> int:
    hard = _furthest(text, start, limit, cuts)
    window = text[start:hard]
    boundaries = set(cuts)
    for pattern in _BOUNDARIES:
        ends = [start + m.end() for m in pattern.finditer(window)]
        good = [e for e in ends if e in boundaries and not _inside_span(e, spans)]
        if good and (good[-1] - start) * 4 >= len(window):  # not so early that parts become tiny
            return good[-1]
    safe = [c for c in cuts[bisect_right(cuts, start):bisect_right(cuts, hard)] if not _inside_span(c, spans)]
    return safe[-1] if safe else hard
