"""Scoring a sentence read aloud: each word of the reference marked ok, mispronounced, missed or extra, and
three scores (accuracy, completeness, fluency). Pure: the phonemes come from a function passed in (espeak-ng's
IPA in production, `ipa` below), so every rule here is unit-tested without a model.

Three signals are combined, none is thresholded alone (on these machines a flat probability threshold
misfired on first and last words, and a nonsense word was sometimes "corrected" to the reference):
- alignment of the heard words with the reference (rapidfuzz Levenshtein opcodes over words): a deleted word
  was missed, an inserted one is extra, a substituted one was said differently;
- for a substitution, the phoneme distance of what was heard from what was expected (espeak-ng `--ipa` of
  both, stress marks dropped): the same sounds (a homophone, "8" for "eight") are ok, anything else is a
  mispronunciation, and the expected sounds that differ are named (per-sound results in the profile);
- for a word heard as written, Whisper's probability against the sentence's median (not a fixed number): well
  below it the word was probably guessed from context; the first and last words get more slack.
Fluency is the speech rate over the reading (words per minute) with a cost per long pause.
What it cannot hear: stress, intonation, vowel quality that Whisper still maps to the right word.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import subprocess
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import regex
from rapidfuzz.distance import Levenshtein

from voice.pronounce import Word

OK, MISPRONOUNCED, MISSED, EXTRA = "ok", "mispronounced", "missed", "extra"
RELATIVE = 0.5  # a word heard as written is flagged under this share of the sentence's median probability
RELATIVE_EDGE = 0.3  # the same for the first and last words and words of 1-2 letters (Whisper is unsure there)
SAME_SOUNDS = 0.15  # phoneme distance (0..1) up to which a differently written word sounds the same
PAUSE_S = 0.6  # a gap between words longer than this is a pause
FLUENT_WPM = 90.0  # a learner reading at this rate or faster is fluent enough (natives read ~150)
_WORD = regex.compile(r"[\p{L}\p{N}']+")
_STRESS = str.maketrans("", "", "ˈˌː'-_ ")

Phonemes = Callable[[list[str], str], list[str]]  # words, language -> their IPA, in order ("" when unknown)


@dataclass(frozen=True)
class Mark:
    """One word of the reading: a reference word (or an extra word heard) and its verdict."""

    word: str
    verdict: str
    heard: str = ""
    sounds: tuple[str, ...] = ()  # the expected phonemes that were said differently, where known


@dataclass(frozen=True)
class Score:
    marks: list[Mark]
    accuracy: float  # words said right among those attempted, 0..1
    completeness: float  # reference words attempted, 0..1
    fluency: float  # 0..1 from the speech rate and pauses
    words_per_minute: float
    pauses: int
    overall: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "overall", round(100 * (0.6 * self.accuracy + 0.25 * self.completeness
                                                         + 0.15 * self.fluency)))

    @property
    def to_repeat(self) -> list[str]:
        """The reference words to practise (mispronounced or missed), each once, in order."""
        return list(dict.fromkeys(m.word for m in self.marks if m.verdict in (MISPRONOUNCED, MISSED)))


def fold(word: str) -> str:
    """Lower case without accents: accents are spelling, the phonemes carry the sound."""
    plain = unicodedata.normalize("NFD", word.lower())
    return "".join(ch for ch in plain if unicodedata.category(ch) != "Mn")


def tokens(text: str) -> list[str]:
    """The words of `text` as written (punctuation dropped)."""
    return list(_WORD.findall(text))


def score(reference: str, heard: list[Word], language: str, phonemes: Phonemes) -> Score:
    """Mark every word of `reference` against the words Whisper heard (with their timings and probabilities)."""
    want = tokens(reference)
    got = [(t, w) for w in heard for t in tokens(w.text)]
    ops = Levenshtein.opcodes([fold(t) for t in want], [fold(t) for t, _ in got])
    probs = [w.probability for _, w in got]
    median = statistics.median(probs) if probs else 0.0
    subs = [(a, b) for op in ops if op.tag == "replace" for a, b in zip(range(op.src_start, op.src_end),
                                                                       range(op.dest_start, op.dest_end), strict=False)]
    sounds = _sound_gaps([want[a] for a, _ in subs], [got[b][0] for _, b in subs], language, phonemes)
    gaps = dict(zip(subs, sounds, strict=True))
    marks: list[Mark] = []
    for op in ops:
        src, dest = range(op.src_start, op.src_end), range(op.dest_start, op.dest_end)
        if op.tag == "equal":
            marks += [_matched(want[a], got[b][1], median, edge=a in (0, len(want) - 1) or len(want[a]) <= 2)
                      for a, b in zip(src, dest, strict=True)]
        elif op.tag == "delete":
            marks += [Mark(want[a], MISSED) for a in src]
        elif op.tag == "insert":
            marks += [Mark(got[b][0], EXTRA, got[b][0]) for b in dest]
        else:
            marks += [_substituted(want[a], got[b][0], gaps[(a, b)]) for a, b in zip(src, dest, strict=False)]
            marks += [Mark(want[a], MISSED) for a in src[len(dest):]] + [Mark(got[b][0], EXTRA, got[b][0])
                                                                      for b in dest[len(src):]]
    return _scored(marks, [w for _, w in got])


def _matched(word: str, heard: Word, median: float, *, edge: bool) -> Mark:
    floor = median * (RELATIVE_EDGE if edge else RELATIVE)
    return Mark(word, MISPRONOUNCED if heard.probability < floor else OK, heard.text.strip())


def _substituted(word: str, heard: str, gap: tuple[str, ...] | None) -> Mark:
    """A word written differently: ok when it sounds the same (gap None), else mispronounced."""
    return Mark(word, OK, heard) if gap is None else Mark(word, MISPRONOUNCED, heard, gap)


def _sound_gaps(wanted: list[str], heard: list[str], language: str,
                phonemes: Phonemes) -> list[tuple[str, ...] | None]:
    """For each substituted pair: None when the two sound the same, else the expected phonemes that differ
    (empty when espeak-ng could not tell)."""
    if not wanted:
        return []
    spoken = phonemes(wanted + heard, language)
    out: list[tuple[str, ...] | None] = []
    for want, got in zip(spoken[:len(wanted)], spoken[len(wanted):], strict=True):
        a, b = want.translate(_STRESS), got.translate(_STRESS)
        if not a or not b:
            out.append(())
        elif Levenshtein.normalized_distance(a, b) <= SAME_SOUNDS:
            out.append(None)
        else:
            out.append(tuple(dict.fromkeys(a[op.src_start:op.src_end] for op in Levenshtein.opcodes(a, b)
                                           if op.tag in ("replace", "delete"))))
    return out


def _scored(marks: list[Mark], heard: list[Word]) -> Score:
    reference = [m for m in marks if m.verdict != EXTRA]
    attempted = [m for m in reference if m.verdict != MISSED]
    ok = sum(m.verdict == OK for m in attempted)
    wpm, pauses = _pace(heard)
    fluency = min(1.0, wpm / FLUENT_WPM) * max(0.0, 1 - 0.2 * pauses) if heard else 0.0
    return Score(marks, round(ok / len(attempted), 2) if attempted else 0.0,
                 round(len(attempted) / len(reference), 2) if reference else 0.0, round(fluency, 2), wpm, pauses)


def _pace(heard: list[Word]) -> tuple[float, int]:
    """Words per minute from the first word's start to the last one's end, and the long pauses between."""
    if not heard:
        return 0.0, 0
    span = max(heard[-1].end - heard[0].start, 0.3)
    pauses = sum(b.start - a.end > PAUSE_S for a, b in itertools.pairwise(heard))
    return round(len(heard) * 60 / span, 1), pauses


def ipa(words: list[str], language: str) -> list[str]:
    """espeak-ng's IPA for each word, in one call (one word a line); "" each when espeak-ng is missing or
    its answer does not line up with the words."""
    program = shutil.which("espeak-ng")
    if program is None or not words:
        return [""] * len(words)
    text = "".join(f"{w}.\n" for w in words)
    done = subprocess.run([program, "-q", "--ipa", "-v", language], input=text, capture_output=True, text=True,
                          check=False, timeout=10)
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines if done.returncode == 0 and len(lines) == len(words) else [""] * len(words)
