"""Speech to text with faster-whisper (CTranslate2, int8), models loaded once per process.

Silero VAD (bundled in faster-whisper) finds the speech; the speech spans, without the silences between
them, are grouped into pieces of at most ~28 s (faster-whisper's `collect_chunks`), so a long note is cut
only at silences and a 30 s note with pauses costs one Whisper window, not two (one window is ~0.7 s of
the 2 cores for base). Each piece is transcribed with the learner's language as a hint (auto-detection
fails on mixed speech); times are mapped back onto the note (`SpeechTimestampsMap`). Word timestamps
(~30 % more time) are computed only when asked for: a pronunciation check needs them, a message does not.
English goes to tiny.en (fast), every other language to the multilingual base model.
Whisper's temperature fallback stays on: without it noisy Spanish fell into repetition loops (WER 7.5 at
10 dB SNR). Its price: highly repetitive speech (a drill of the same sentences) is re-decoded at higher
temperatures, ~7× slower (9.5 s instead of 1.2 s for 30 s of repeated sentences, measured).
Confidence is the duration-weighted mean of exp(avg_logprob) over the segments: ≈0.8 on clean speech,
under ≈0.45 (avg_logprob < −0.8) the transcript is mostly guesswork.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.vad import SpeechTimestampsMap, VadOptions, collect_chunks, get_speech_timestamps

from charla.core import metrics
from voice.audio import RATE, Samples, peak_normalise
from voice.models import label
from voice.pronounce import Word

PIECE_S = 28.0  # Whisper's window is 30 s; a little room for the padding around speech
_VAD = VadOptions(min_silence_duration_ms=400, speech_pad_ms=200, max_speech_duration_s=PIECE_S)
# What Whisper writes for music, applause or nothing at all (no words a learner said).
_NOT_SPEECH = re.compile(r"^[\s\W♪♫]*$|^\s*[\[(].*[\])]\s*$")


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float


@dataclass
class Transcript:
    text: str
    language: str
    model: str
    seconds: float  # the whole note
    speech_seconds: float  # what VAD kept
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """exp(avg_logprob) weighted by segment duration; 0 when nothing was heard."""
        spans = [(max(s.end - s.start, 0.01), s.avg_logprob) for s in self.segments]
        total = sum(d for d, _ in spans)
        return math.exp(sum(d * lp for d, lp in spans) / total) if total else 0.0

    @property
    def heard_speech(self) -> bool:
        return bool(self.text) and not _NOT_SPEECH.match(self.text)


@dataclass(frozen=True)
class SttConfig:
    multilingual: Path  # CTranslate2 Whisper directory (the assembled base by default)
    english: Path | None  # a faster English-only model (tiny.en), or None to use the multilingual one
    threads: int = 2
    workers: int = 1  # transcriptions that may run at once in this process
    beam_size: int = 1
    noise_reduction: bool = False


class Transcriber:
    """The loaded models; `transcribe` is blocking (run it in a thread) and safe from `workers` threads."""

    def __init__(self, config: SttConfig) -> None:
        self.config = config
        self._models: dict[str, WhisperModel] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load every configured model now (at startup, not on the first learner's note)."""
        self._model("multilingual")
        if self.config.english is not None:
            self._model("english")

    def _model(self, which: str) -> WhisperModel:
        with self._lock:
            if which not in self._models:
                path = self.config.english if which == "english" else self.config.multilingual
                assert path is not None
                self._models[which] = WhisperModel(str(path), device="cpu", compute_type="int8",
                                                   cpu_threads=self.config.threads, num_workers=self.config.workers)
            return self._models[which]

    def model_for(self, language: str) -> tuple[str, WhisperModel]:
        if language == "en" and self.config.english is not None:
            return label(self.config.english), self._model("english")
        return label(self.config.multilingual), self._model("multilingual")

    def transcribe(self, samples: Samples, language: str, *, words: bool = False) -> Transcript:
        """What was said in `samples` (16 kHz mono), with each word's timing and probability when `words`;
        an empty transcript when VAD finds no speech. Its time and real-time factor are recorded
        (charla_stt_seconds, charla_stt_real_time_factor)."""
        started = time.perf_counter()
        found = self._transcribe(samples, language, words)
        metrics.observe_stt(found.seconds, time.perf_counter() - started)
        return found

    def _transcribe(self, samples: Samples, language: str, words: bool) -> Transcript:
        seconds = len(samples) / RATE
        audio = peak_normalise(samples)
        if self.config.noise_reduction:
            audio = denoise(audio)
        name, model = self.model_for(language)
        spans = get_speech_timestamps(audio, _VAD, sampling_rate=RATE)
        speech = sum(s["end"] - s["start"] for s in spans) / RATE
        result = Transcript("", language, name, seconds, speech)
        if not spans:
            return result
        timeline = SpeechTimestampsMap(spans, RATE)
        texts: list[str] = []
        for piece, offset in pieces(audio, spans):
            found, _ = model.transcribe(piece, language=language, beam_size=self.config.beam_size,
                                        word_timestamps=words, vad_filter=False, condition_on_previous_text=False,
                                        initial_prompt=texts[-1][-200:] if texts else None)
            when = functools.partial(_note_time, timeline, offset)
            for seg in found:
                result.segments.append(Segment(when(seg.start), when(seg.end, True), seg.text.strip(),
                                               float(seg.avg_logprob), float(seg.no_speech_prob)))
                result.words += [Word(w.word.strip(), when(w.start), when(w.end, True), float(w.probability))
                                 for w in seg.words or []]
                texts.append(seg.text.strip())
        result.text = " ".join(t for t in texts if t).strip()
        return result


def _note_time(timeline: SpeechTimestampsMap, offset: float, seconds: float, end: bool = False) -> float:
    """Where `seconds` into a piece starting `offset` into the joined speech falls in the note."""
    return float(timeline.get_original_time(offset + float(seconds), is_end=end))


def pieces(audio: Samples, spans: list[dict[str, int]]) -> list[tuple[Samples, float]]:
    """The speech spans joined (silences between them left out) into pieces of at most PIECE_S seconds,
    each with its start in the joined speech (seconds); VAD already split any span longer than that."""
    chunks, starts = collect_chunks(audio, spans, RATE, max_duration=PIECE_S)
    return [(chunk, float(meta["offset"])) for chunk, meta in zip(chunks, starts, strict=True) if len(chunk)]


def denoise(samples: Samples) -> Samples:
    """Spectral-gating noise reduction (noisereduce). Off by default: it raised WER on every noisy set
    measured (see `make bench`)."""
    import noisereduce

    return np.asarray(noisereduce.reduce_noise(y=samples, sr=RATE), dtype=np.float32)
