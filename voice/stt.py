"""Speech to text with faster-whisper (CTranslate2, int8), models loaded once per process.

A note is cut into pieces of at most ~30 s at its silences (Silero VAD, bundled in faster-whisper), each
piece transcribed with the learner's language as a hint (auto-detection fails on mixed speech) and word
timestamps; English goes to tiny.en (fast), every other language to the multilingual base model.
Whisper's temperature fallback stays on: without it noisy Spanish fell into repetition loops (WER 7.5 at
10 dB SNR). Its price: highly repetitive speech (a drill of the same sentences) is re-decoded at higher
temperatures, ~7× slower (9.5 s instead of 1.2 s for 30 s of repeated sentences, measured).
Confidence is the duration-weighted mean of exp(avg_logprob) over the segments: ≈0.8 on clean speech,
under ≈0.45 (avg_logprob < −0.8) the transcript is mostly guesswork.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from charla import metrics
from voice.audio import RATE, Samples, peak_normalise
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
            return self.config.english.name, self._model("english")
        return self.config.multilingual.name, self._model("multilingual")

    def transcribe(self, samples: Samples, language: str) -> Transcript:
        """What was said in `samples` (16 kHz mono); an empty transcript when VAD finds no speech. Its time
        and real-time factor are recorded (charla_stt_seconds, charla_stt_real_time_factor)."""
        started = time.perf_counter()
        found = self._transcribe(samples, language)
        metrics.observe_stt(found.seconds, time.perf_counter() - started)
        return found

    def _transcribe(self, samples: Samples, language: str) -> Transcript:
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
        texts: list[str] = []
        for start, end in pieces(spans):
            offset = start / RATE
            found, _ = model.transcribe(audio[start:end], language=language, beam_size=self.config.beam_size,
                                        word_timestamps=True, vad_filter=False, condition_on_previous_text=False,
                                        initial_prompt=texts[-1][-200:] if texts else None)
            for seg in found:
                result.segments.append(Segment(float(seg.start) + offset, float(seg.end) + offset, seg.text.strip(),
                                               float(seg.avg_logprob), float(seg.no_speech_prob)))
                result.words += [Word(w.word.strip(), float(w.start) + offset, float(w.end) + offset,
                                      float(w.probability)) for w in seg.words or []]
                texts.append(seg.text.strip())
        result.text = " ".join(t for t in texts if t).strip()
        return result


def pieces(spans: list[dict[str, int]]) -> list[tuple[int, int]]:
    """Speech spans grouped into pieces of at most PIECE_S seconds, cut only at silences (VAD already
    split any single span longer than that)."""
    limit = int(PIECE_S * RATE)
    out: list[tuple[int, int]] = []
    for span in spans:
        if out and span["end"] - out[-1][0] <= limit:
            out[-1] = (out[-1][0], span["end"])
        else:
            out.append((span["start"], span["end"]))
    return out


def denoise(samples: Samples) -> Samples:
    """Spectral-gating noise reduction (noisereduce). Off by default: it raised WER on every noisy set
    measured (see `make bench`)."""
    import noisereduce

    return np.asarray(noisereduce.reduce_noise(y=samples, sr=RATE), dtype=np.float32)
